"""Can this voice speak yet? The one rule, asked when a job is made and again when a worker takes it.

A voice speaks with the provider voice of the clone attempt it waits for, once that attempt is ready;
without such an attempt, with the provider voice its row carries. An attempt still under way means
"wait"; one that ended any other way, or a voice with neither, cannot speak.
"""

from __future__ import annotations

import uuid

import msgspec

from backend.domain.attempts import OPEN_STATUSES, AttemptRow
from backend.domain.voices import VoiceRow
from backend.providers.base import ProviderVoice, stored_voice


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
    attempt it waits for (None: none; it matters only while the row carries no provider voice, so it is read
    only then: `own_voice`, `awaiting`)."""
    if attempt is None:
        return own or Mute("voice_not_ready", "The voice has not been cloned.")
    if attempt.status in OPEN_STATUSES:
        return Waits(attempt.id, attempt.provider)
    if attempt.status != "ready" or attempt.voice is None:
        reason = attempt.error_message or f"the clone attempt ended {attempt.status}"
        return Mute("voice_clone_failed", f"The voice could not be cloned: {reason}")
    return attempt.voice


def own_voice(voice: VoiceRow) -> ProviderVoice | None:
    """The provider voice a voice row carries (its attempt publishes it once ready and synced), None before."""
    return stored_voice(
        voice.tts_provider, voice.provider_voice_id, voice.provider_target_model, voice.provider_metadata
    )


def enrolled_voice(attempt: AttemptRow) -> ProviderVoice | None:
    """The provider voice an attempt enrolled, as its row keeps it; None before the provider made one."""
    return stored_voice(
        attempt.provider, attempt.provider_voice_id, attempt.provider_target_model, attempt.provider_metadata
    )


def awaiting(attempt: AttemptRow | None) -> Awaited | None:
    """The attempt under way for a voice (`backend.records.attempts.open_for_voice`) as `speaker` weighs it."""
    if attempt is None:
        return None
    return Awaited(
        id=attempt.id,
        status=attempt.status,
        provider=attempt.provider,
        voice=enrolled_voice(attempt),
        error_message=attempt.last_error_message,
    )
