"""`public.speech_streams`: how a stream ended."""

from __future__ import annotations

import enum


class SpeechStreamOutcome(enum.StrEnum):
    """`speech_streams.outcome`, exactly its CHECK constraint's values."""

    #: Opened and not yet recorded as ended (or its end could not be recorded).
    STREAMING = "streaming"
    COMPLETED = "completed"
    CANCELED = "canceled"
    FAILED = "failed"
