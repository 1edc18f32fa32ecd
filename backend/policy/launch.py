"""The launch gate, one rule for every area that asks whether a reflection's voice may speak: only once its active
attempt is ready, synced and previewed (the readiness `backend.records.reflection_rows.launch_row` reads, with every
reason it may not launch yet), and then with the provider voice that attempt's voice row carries."""

from __future__ import annotations

import uuid

import msgspec

from backend.domain.reflections import LaunchRow
from backend.errors import LaunchBlocked
from backend.providers.base import ProviderVoice, stored_voice


class LaunchVoice(msgspec.Struct, frozen=True, kw_only=True):
    """The voice a reflection speaks with once its launch gate passes."""

    attempt_id: uuid.UUID
    voice_id: uuid.UUID
    voice: ProviderVoice


def launch_voice(gate: LaunchRow) -> LaunchVoice:
    """The provider voice a runtime speaks with; LaunchBlocked (every reason) unless the reflection's active attempt
    is ready, synced and previewed, and `voice_deleted` when its voice row is gone."""
    if not gate.ready:
        raise LaunchBlocked(gate.reasons)
    voice = stored_voice(
        gate.provider, gate.provider_voice_id, gate.target_model, gate.provider_metadata, gate.language
    )
    if gate.attempt_id is None or gate.voice_id is None or voice is None:
        raise LaunchBlocked(["voice_deleted"])
    return LaunchVoice(attempt_id=gate.attempt_id, voice_id=gate.voice_id, voice=voice)
