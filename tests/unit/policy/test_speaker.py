"""Whether a voice speaks now, without a database: its own provider voice, the attempt it waits for, or why not."""

from __future__ import annotations

import uuid

from backend.domain.attempts import OPEN_STATUSES
from backend.policy.speaker import Awaited, Mute, Waits, speaker
from backend.providers.base import ProviderVoice, stored_voice

OWN = ProviderVoice(provider="local", voice_id="own")
NEW = ProviderVoice(provider="local", voice_id="new")


def attempt(status: str, voice: ProviderVoice | None = None, error: str | None = None) -> Awaited:
    return Awaited(id=uuid.uuid4(), status=status, provider="local", voice=voice, error_message=error)


def test_a_voice_with_no_attempt_speaks_with_its_own_provider_voice() -> None:
    assert speaker(OWN, None) == OWN


def test_a_voice_never_cloned_is_mute() -> None:
    assert speaker(None, None) == Mute("voice_not_ready", "The voice has not been cloned.")


def test_a_voice_whose_attempt_is_under_way_waits_for_it() -> None:
    for status in OPEN_STATUSES:
        waited = attempt(status)
        assert speaker(None, waited) == Waits(waited.id, "local")


def test_a_ready_attempt_speaks_with_the_voice_it_made() -> None:
    assert speaker(None, attempt("ready", NEW)) == NEW


def test_an_attempt_that_failed_says_why() -> None:
    said = speaker(None, attempt("failed", error="the provider refused the sample"))
    assert said == Mute("voice_clone_failed", "The voice could not be cloned: the provider refused the sample")
    said = speaker(None, attempt("failed"))
    assert isinstance(said, Mute)
    assert said.message == "The voice could not be cloned: the clone attempt ended failed"


def test_a_ready_attempt_without_a_voice_is_mute() -> None:
    assert isinstance(speaker(None, attempt("ready")), Mute)


def test_a_provider_voice_is_made_only_from_a_row_that_records_one() -> None:
    assert stored_voice(None, "v") is None
    assert stored_voice("local", None) is None
    made = stored_voice("cartesia", "v", "sonic-2", {"language": "en"})
    assert made == ProviderVoice(provider="cartesia", voice_id="v", target_model="sonic-2", metadata={"language": "en"})
    assert stored_voice("local", "v") == ProviderVoice(provider="local", voice_id="v", target_model=None, metadata={})
    spoken = stored_voice("local", "v", language="de")
    assert spoken is not None
    assert spoken.language == "de"
