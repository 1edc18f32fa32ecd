"""Can this voice speak yet? The one rule, asked when a job is made and again when a worker takes it.

A voice speaks with the provider voice of the clone attempt it waits for, once that attempt is ready;
without such an attempt, with the provider voice its row carries. An attempt still under way means
"wait"; one that ended any other way, or a voice with neither, cannot speak.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from backend.db.connection import Connection
from backend.providers.base import ProviderVoice
from backend.records import attempts
from backend.records.attempts import OPEN_STATUSES
from backend.records.voices import VoiceRow


class Waits(msgspec.Struct, frozen=True):
    """Its clone attempt is under way; ask again when it ends."""

    attempt_id: uuid.UUID
    provider: str


class Mute(msgspec.Struct, frozen=True):
    """It cannot speak: a stable code and a message safe to show."""

    code: str
    message: str


class Awaited(msgspec.Struct, frozen=True, kw_only=True):
    """The clone attempt a voice waits for: where it is, and the provider voice it made if any."""

    id: uuid.UUID
    status: str
    provider: str
    voice: ProviderVoice | None
    error_message: str | None = None


def speaker(own: ProviderVoice | None, attempt: Awaited | None) -> ProviderVoice | Waits | Mute:
    """Whether a voice speaks now: `own` is the provider voice its row carries, `attempt` the clone
    attempt it waits for (None: none)."""
    if attempt is None:
        return own or Mute("voice_not_ready", "The voice has not been cloned.")
    if attempt.status in OPEN_STATUSES:
        return Waits(attempt.id, attempt.provider)
    if attempt.status != "ready" or attempt.voice is None:
        reason = attempt.error_message or f"the clone attempt ended {attempt.status}"
        return Mute("voice_clone_failed", f"The voice could not be cloned: {reason}")
    return attempt.voice


def provider_voice(
    provider: str | None, voice_id: str | None, target_model: str | None = None, metadata: dict[str, Any] | None = None
) -> ProviderVoice | None:
    """A provider voice from a row's columns, None when the row records none."""
    if provider is None or voice_id is None:
        return None
    return ProviderVoice(provider=provider, voice_id=voice_id, target_model=target_model, metadata=metadata or {})


async def speaker_now(conn: Connection, voice: VoiceRow) -> ProviderVoice | Waits | Mute:
    """`speaker` for a voice row on `conn`: the clone attempt under way for it (if any) matters only
    while the row carries no provider voice."""
    own = provider_voice(voice.tts_provider, voice.provider_voice_id, voice.provider_target_model)
    attempt = None if own is not None else await attempts.open_for_voice(conn, voice.id)
    if attempt is None:
        return speaker(own, None)
    made = provider_voice(
        attempt.provider, attempt.provider_voice_id, attempt.provider_target_model, attempt.provider_metadata
    )
    awaited = Awaited(
        id=attempt.id,
        status=attempt.status,
        provider=attempt.provider,
        voice=made,
        error_message=attempt.last_error_message,
    )
    return speaker(None, awaited)
