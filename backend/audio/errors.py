"""Why an audio sample is refused: one ``AudioRejected`` subclass per stable code.

A refusal is about the sample's content, found by the check that runs on the queue or in the clone
step, and recorded with the sample; its status and code say how an API would report it.
"""

from __future__ import annotations

from typing import TypedDict

import msgspec

from backend.audio.report import QualityReport
from backend.errors import VoicegateError


class RefusalFacts(TypedDict, total=False):
    """The figures behind a refusal, as its problem body carries them (`backend.http.pipeline.problem.ProblemDetails`
    declares each one)."""

    reason: str
    durationS: float
    decodedS: float
    heldS: float
    maxForSizeS: float
    maxDurationS: float
    minDurationS: float
    clippingRatio: float
    maxClippingRatio: float


class AudioRejected(VoicegateError, status=422, code="audio_rejected"):
    """The audio sample cannot be used."""

    def __init__(
        self,
        detail: str | None = None,
        *,
        report: QualityReport | None = None,
        facts: RefusalFacts | None = None,
    ) -> None:
        super().__init__(detail)
        #: The quality report, when the sample decoded far enough to measure it (stored beside the refusal).
        self.report = report
        #: The measured values and limits behind the refusal, camelCase keys, for the problem body.
        self.facts: RefusalFacts = facts or {}

    def extensions(self) -> dict[str, object]:
        """The figures behind the refusal, and the quality report when one was measured."""
        members: dict[str, object] = dict(self.facts)
        if self.report is not None:
            members["quality"] = msgspec.to_builtins(self.report)
        return members


class UnsupportedOrCorruptAudio(AudioRejected, status=415, code="unsupported_audio"):
    """unsupported or corrupt audio"""


class AudioTooLongForSize(AudioRejected, code="audio_too_long_for_size"):
    """audio too long for its size: the file claims or decodes to more audio than its bytes can hold"""


class SampleTooShort(AudioRejected, code="sample_too_short"):
    """sample too short"""


class SampleTooLong(AudioRejected, code="sample_too_long"):
    """sample too long"""


class NoSpeech(AudioRejected, code="no_speech"):
    """no speech detected"""


class SpeakerMismatch(AudioRejected, code="speaker_mismatch"):
    """the sample's speaker is not the speaker who recorded its consent"""


class SampleHeld(AudioRejected, code="held_for_review"):
    """the sample is held for review: nothing of it reaches a provider until an operator releases it"""


class SampleAwaitingReading(AudioRejected, code="reading_required"):
    """before the sample is used, its speaker reads a short phrase aloud, so that voicegate hears the voice is theirs"""


class SampleOwnershipRefused(AudioRejected, code="ownership_refused"):
    """the sample's voice cannot be accepted for this account"""


class SampleSpeakersMixed(AudioRejected, code="mixed_speakers"):
    """the sample holds more than one speaker"""


class SyntheticSpeech(AudioRejected, code="synthetic_speech"):
    """the sample carries the watermark of synthesized speech: a voice is not cloned from a clone"""


class SampleClipped(AudioRejected, code="clipping"):
    """sample is clipped"""
