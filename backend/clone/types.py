"""What the two routes that start a clone from an uploaded sample answer, declared once for both: `POST
/api/clone/finalize` (`backend.voices.types.FinalizedClone`, snake_case) and `POST
/v1/reflections/{id}/voice/clone` (`backend.reflections.types.QueuedClone`, its camelCase twin)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import msgspec

from backend.domain.attempts import AttemptStatus


class StartedClone(msgspec.Struct):
    """A clone started from an uploaded sample: the new voice, the stored sample and the queued attempt."""

    voice_id: uuid.UUID
    attempt_id: uuid.UUID
    sample_id: uuid.UUID
    provider: str
    status: AttemptStatus
    sniffed_type: str


class Likeness(msgspec.Struct, rename="camel", kw_only=True):
    """A voice's likeness as clients see it: the cosine (null until judged, or when it could not be), the
    threshold from which it would pass as its speaker, what it was judged on, why it is null, and what the stock
    voice scored against the same samples (`stock_likeness`)."""

    likeness: float | None
    likeness_threshold: float | None
    likeness_source: LikenessSource | None
    likeness_error: NoLikeness | None
    likeness_baseline: float | None = None


class VoiceManifest(msgspec.Struct, rename="camel", kw_only=True):
    """The manifest's JSON: identifiers, times and states, never names or text."""

    voice_id: uuid.UUID
    provider: str
    provider_voice_id: str
    target_model: str | None
    created_at: datetime
    updated_at: datetime
    consent_id: uuid.UUID | None
    consent_version: str | None
    sample_id: uuid.UUID | None
    #: The sample's quality verdict (`good`, `usable` or `poor`), when the voice was cloned from a sample.
    sample_verdict: str | None
    #: How much the voice sounds like its samples (`backend.clone.likeness`), the threshold from which it would
    #: pass as their speaker, what was judged, and why there is no likeness; null until judged. Beside it, what
    #: the bundled `local` voice as it ships scored against the same samples.
    likeness: float | None = None
    likeness_threshold: float | None = None
    likeness_source: str | None = None
    likeness_error: str | None = None
    likeness_baseline: float | None = None


class LikenessSource(enum.StrEnum):
    """What the provider spoke that the likeness was judged on."""

    PROBE = "probe"
    PREVIEW = "preview"
    RENDER = "render"


class NoLikeness(enum.StrEnum):
    """Why an attempt that was judged has no likeness."""

    #: The provider could not speak the probe (its error is logged).
    PROBE_FAILED = "probe_failed"
    #: What the provider spoke holds too little speech for a voiceprint (or could not be decoded).
    NO_SPEECH = "no_speech"
    #: The attempt has no samples' print: a custom voice id, a voice reused without enrolment, or samples
    #: with too little speech.
    NO_SAMPLE = "no_sample"
