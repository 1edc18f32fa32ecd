"""What the `/api/v1/voice-samples` routes answer: a sample accepted, its status, where to listen to it, and the
caller's list."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from backend.audio.report import QualityReport
from backend.records.sample_rows import VoiceSampleStatus


class SampleAccepted(msgspec.Struct, rename="camel"):
    """`202` of `POST /api/v1/voice-samples`: the sample is stored and queued for checking."""

    sample_id: uuid.UUID
    status: VoiceSampleStatus
    provider: str
    expires_at: datetime


class SampleStatus(msgspec.Struct, rename="camel"):
    """A sample as its owner sees it: where checking got to, and what was measured."""

    sample_id: uuid.UUID
    status: VoiceSampleStatus
    provider: str | None
    sniffed_type: str | None
    size_bytes: int | None
    duration_ms: int | None
    sample_rate: int | None
    channels: int | None
    #: What was measured on the upload, with a verdict and advice; null until checked.
    quality: QualityReport | None
    #: Why the sample was refused (`failed` only), in words a user can act on; it begins with the refusal's
    #: code where it has one: `speaker_mismatch: the speech from 4.2 s to 24.0 s is not the consent's speaker
    #: …` (or, judged as a whole, `… the speaker matches the consent's at 0.12, below 0.39`), `mixed_speakers:
    #: the speech from 4.2 s to 7.3 s is not the voice of the rest of the sample …` (the seconds of the upload).
    failure_reason: str | None
    #: The voice cloned from this sample, once a clone was asked for.
    voice_id: uuid.UUID | None
    #: When the upload expires; a kept sample then loses its original and keeps its cleaned copy.
    expires_at: datetime
    created_at: datetime
    #: Whether its owner consented to keep it while the voice exists (and has not withdrawn that).
    keep_sample: bool = False
    #: What its owner calls it; null until named.
    name: str | None = None
    #: The consent it is stored under.
    consent_id: uuid.UUID | None = None
    #: Under a spoken consent, how its speaker matches the consent's (the cosine of their voiceprints; the
    #: same speaker from `backend.voiceprint.THRESHOLD`); null under a checkbox consent or until checked.
    speaker_match: float | None = None


class SampleAudio(msgspec.Struct, rename="camel"):
    """Where to listen to a sample: a short-lived signed URL of the upload (or, once its original was
    trimmed, of its cleaned copy)."""

    audio_url: str
    expires_in: int
    #: `original` (as uploaded) or `processed` (cleaned for enrolment, WAV).
    copy: str


class SampleList(msgspec.Struct):
    """The caller's samples, newest first."""

    samples: list[SampleStatus]
