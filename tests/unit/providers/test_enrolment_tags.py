"""Enrolment-key tags: each shape an adapter writes is read back as the key that made the voice, and a
voice without one is not voicegate's."""

from __future__ import annotations

import pytest

from backend.providers.base import ProviderVoice
from backend.providers.enrolment import key_marker, key_tag, qwen_preferred_name, selfhosted_voice_name

KEY = "vg-0b7e6f9e-5d0a-4a57-9f53-3c1f0e1c2d4a"


@pytest.mark.parametrize(
    "voice",
    [
        ProviderVoice(provider="elevenlabs", voice_id="abc", enrolment_key=KEY),
        ProviderVoice(
            provider="cartesia", voice_id="abc", metadata={"description": f"voicegate voice {key_marker(KEY)}"}
        ),
        ProviderVoice(provider="qwen", voice_id=f"qwen-tts-vc-{qwen_preferred_name(KEY)}-voice-20261121-ab12"),
        ProviderVoice(provider="selfhosted", voice_id=selfhosted_voice_name(KEY)),
        ProviderVoice(provider="selfhosted", voice_id="voice_01H", name=selfhosted_voice_name(KEY)),
    ],
    ids=["label", "marker", "qwen-name", "selfhosted-id", "selfhosted-name"],
)
def test_every_tag_shape_names_the_key_that_made_the_voice(voice: ProviderVoice) -> None:
    tag = key_tag(voice)
    assert tag is not None
    assert tag.matches(KEY)
    assert not tag.matches(KEY + "x")


@pytest.mark.parametrize(
    "voice",
    [
        ProviderVoice(provider="selfhosted", voice_id="vivian"),
        ProviderVoice(provider="selfhosted", voice_id="voicegate_not-a-digest"),
        ProviderVoice(provider="elevenlabs", voice_id="abc", metadata={"description": "my own voice"}),
    ],
)
def test_a_voice_without_a_tag_is_not_ours(voice: ProviderVoice) -> None:
    assert key_tag(voice) is None


def test_the_selfhosted_name_is_safe_for_any_server() -> None:
    name = selfhosted_voice_name(KEY)
    assert name.startswith("voicegate_")
    assert len(name) == 34
    assert name.replace("_", "").isalnum()
