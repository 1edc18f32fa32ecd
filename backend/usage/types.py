"""What `GET /api/v1/usage` answers: the caller's characters and seconds this window, by provider and kind, with
the limit, what remains and the reset."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from backend.usage.ledger import UsageKind


class ProviderUsage(msgspec.Struct, rename="camel", kw_only=True):
    """What one provider was sent, and returned, for one kind of work this window."""

    provider: str
    kind: UsageKind
    characters: int
    audio_seconds: Annotated[float, msgspec.Meta(description="Seconds of audio the calls returned, as recorded.")]
    calls: int


class Usage(msgspec.Struct, rename="camel", kw_only=True):
    """The caller's spend in the current window, against VOICEGATE_USER_CHARACTERS."""

    characters: Annotated[int, msgspec.Meta(description="Characters sent to providers this window.")]
    audio_seconds: float
    limit: Annotated[int, msgspec.Meta(description="Characters allowed per window (VOICEGATE_USER_CHARACTERS).")]
    remaining: int
    window_seconds: int
    window_start: datetime
    resets_at: datetime
    by_provider: list[ProviderUsage]
