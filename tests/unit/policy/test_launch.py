"""The launch gate, without a database: what the reflection's readiness row says decides, with every reason."""

from __future__ import annotations

import uuid

import pytest

from backend.domain.reflections import LaunchRow
from backend.errors import LaunchBlocked
from backend.policy.launch import launch_voice
from backend.providers.base import ProviderVoice

VOICE = ProviderVoice(provider="local", voice_id="pv-1", language="en")


def row(*, ready: bool, reasons: list[str] | None = None, voice: ProviderVoice | None = VOICE) -> LaunchRow:
    return LaunchRow(
        ready=ready,
        reasons=reasons or [],
        attempt_id=uuid.uuid4() if voice else None,
        voice_id=uuid.uuid4() if voice else None,
        provider=voice.provider if voice else None,
        provider_voice_id=voice.voice_id if voice else None,
        target_model=None,
        provider_metadata={},
        language=voice.language if voice else None,
    )


def test_a_ready_voice_launches_with_the_voice_its_row_carries() -> None:
    gate = row(ready=True)
    launched = launch_voice(gate)
    assert (launched.attempt_id, launched.voice_id, launched.voice) == (gate.attempt_id, gate.voice_id, VOICE)


def test_a_voice_not_ready_is_blocked_with_every_reason() -> None:
    with pytest.raises(LaunchBlocked) as blocked:
        launch_voice(row(ready=False, reasons=["clone_not_ready", "preview_not_completed"]))
    assert blocked.value.reasons == ["clone_not_ready", "preview_not_completed"]


def test_a_ready_gate_whose_voice_row_is_gone_is_blocked_as_deleted() -> None:
    with pytest.raises(LaunchBlocked) as blocked:
        launch_voice(row(ready=True, voice=None))
    assert blocked.value.reasons == ["voice_deleted"]
