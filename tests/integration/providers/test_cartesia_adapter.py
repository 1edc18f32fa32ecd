"""Cartesia adapter against its fake: lifecycle, request shapes, both error shapes, lost answers."""

from __future__ import annotations

import random

import httpx
import msgspec
import pytest

from backend.providers.base import ProviderVoice
from backend.providers.cartesia import CartesiaProvider
from backend.providers.enrolment import key_marker
from backend.providers.errors import (
    ModelRetiredError,
    PermanentProviderError,
    TransientProviderError,
    VoiceNotFoundError,
)
from fakes import CartesiaFake, Fault
from fakes.cartesia import CartesiaVoice
from tests.provider_support import CARTESIA_KEY, FAST_POLICY, SHORT_TIMEOUT, settings_for, wav_sample


def make(
    url: str,
    client: httpx.AsyncClient,
    rng: random.Random,
    *,
    key: str = CARTESIA_KEY,
    version: str = "2026-03-01",
    model: str = "",
) -> CartesiaProvider:
    settings = settings_for(CARTESIA_API_KEY=key, CARTESIA_BASE_URL=url, CARTESIA_VERSION=version, CARTESIA_MODEL=model)
    return CartesiaProvider(
        settings.sections["cartesia"], client, policy=FAST_POLICY, rng=rng, create_timeout=SHORT_TIMEOUT
    )


async def enrol(provider: CartesiaProvider, key: str = "attempt-1", language: str = "en") -> ProviderVoice:
    return await provider.enrol([wav_sample()], name="Ada", language=language, transcript=None, key=key)


async def test_lifecycle(
    cartesia_fake: tuple[CartesiaFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = cartesia_fake
    provider = make(url, http_client, rng)
    voice = await enrol(provider)
    assert voice.voice_id in fake.voices
    assert voice.enrolment_key == "attempt-1"
    found = await provider.find("attempt-1")
    assert found is not None
    assert found.voice_id == voice.voice_id
    assert await provider.find("other") is None
    assert (await provider.get(voice.voice_id)).name == "Ada"
    assert [v.voice_id for v in await provider.list()] == [voice.voice_id]
    result = await provider.synthesize(voice, "Good morning")
    assert (result.mime_type, result.sample_rate) == ("audio/wav", 24000)
    assert result.audio.startswith(b"RIFF")
    await provider.delete(voice.voice_id)
    assert fake.requests_to("DELETE", "/voices/")[-1].path == f"/voices/{voice.voice_id}"
    assert await provider.list() == []
    with pytest.raises(VoiceNotFoundError):
        await provider.delete(voice.voice_id)
    with pytest.raises(VoiceNotFoundError):
        await provider.get(voice.voice_id)


async def test_request_shapes(
    cartesia_fake: tuple[CartesiaFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = cartesia_fake
    provider = make(url, http_client, rng, version="2025-04-16")
    voice = await enrol(provider, key="k-shape", language="fr-FR")
    clone = fake.requests_to("POST", "/voices/clone")[0]
    assert clone.headers["authorization"] == f"Bearer {CARTESIA_KEY}"
    assert clone.headers["cartesia-version"] == "2025-04-16"
    fields = clone.form_fields()
    assert sorted(fields) == ["clip", "description", "language", "name"]
    assert (fields["name"][0].text, fields["language"][0].text) == ("Ada", "fr")
    assert key_marker("k-shape") in fields["description"][0].text
    assert fields["clip"][0].filename == "sample.wav"
    assert fields["clip"][0].content_type == "audio/wav"

    await provider.synthesize(voice, "Bonjour")
    tts = fake.requests_to("POST", "/tts/bytes")[0]
    assert tts.headers["cartesia-version"] == "2025-04-16"
    assert tts.json() == {
        "model_id": "sonic-3.5",
        "transcript": "Bonjour",
        "voice": {"mode": "id", "id": voice.voice_id},
        "output_format": {"container": "wav", "encoding": "pcm_s16le", "sample_rate": 24000},
        "language": "fr",
    }
    listing = fake.requests_to("GET", "/voices")[0]
    assert listing.query == {"limit": ["100"], "is_owner": ["true"]}


@pytest.mark.parametrize("version", ["2025-04-16", "2026-03-01"])
async def test_both_error_shapes(
    cartesia_fake: tuple[CartesiaFake, str], http_client: httpx.AsyncClient, rng: random.Random, version: str
) -> None:
    _, url = cartesia_fake
    with pytest.raises(PermanentProviderError) as auth:
        await make(url, http_client, rng, key="sk_car_wrong", version=version).list()
    assert auth.value.http_status == 401
    assert auth.value.safe_message == "The provider rejected the configured credentials."
    assert auth.value.operator_detail == "Invalid API key."
    expected_code = "unauthorized" if version == "2026-03-01" else "Unauthorized"
    assert auth.value.provider_code == expected_code

    provider = make(url, http_client, rng, version=version)
    settings = settings_for(CARTESIA_API_KEY=CARTESIA_KEY, CARTESIA_BASE_URL=url, CARTESIA_VERSION=version)
    # A model the settings would refuse, so that Cartesia refuses it instead.
    unknown = CartesiaProvider(msgspec.structs.replace(settings.sections["cartesia"], model="sonic-0"), http_client)
    with pytest.raises(PermanentProviderError) as model:
        await unknown.synthesize(msgspec.structs.replace(await enrol(provider), target_model="sonic-0"), "hi")
    assert model.value.http_status == 400
    assert model.value.provider_code in {"model_not_found", "Invalid model"}
    assert not isinstance(model.value, VoiceNotFoundError | ModelRetiredError)


async def test_a_voice_speaks_with_the_model_it_was_cloned_for(
    cartesia_fake: tuple[CartesiaFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = cartesia_fake
    voice = await enrol(make(url, http_client, rng, model="sonic-3"))
    assert voice.target_model == "sonic-3"
    await make(url, http_client, rng).synthesize(voice, "hi")
    assert fake.requests_to("POST", "/tts/bytes")[-1].json()["model_id"] == "sonic-3"


async def test_the_configured_model_clones_the_languages_it_speaks_and_a_current_one_the_rest(
    cartesia_fake: tuple[CartesiaFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    """``CARTESIA_MODEL=sonic-2``: its snapshots left serve en, de, es, fr, ja, ko, pt, zh only (Cartesia's
    API-changes page), so an Italian voice is cloned and spoken with the recommended ``sonic-3.5``."""
    fake, url = cartesia_fake
    provider = make(url, http_client, rng, model="sonic-2")
    german = await enrol(provider, key="k-de", language="de-AT")
    italian = await enrol(provider, key="k-it", language="it")
    assert (german.target_model, italian.target_model) == ("sonic-2", "sonic-3.5")
    assert (await provider.find("k-it")) == msgspec.structs.replace(italian, request_id=None)
    # Read back from the database a voice has its model and metadata only: the language rides in the latter.
    stored = ProviderVoice(provider="cartesia", voice_id=italian.voice_id, metadata=italian.metadata)
    for voice in (german, italian, stored):
        assert (await provider.synthesize(voice, "Ciao")).audio.startswith(b"RIFF")
    spoken = [(r.json()["model_id"], r.json()["language"]) for r in fake.requests_to("POST", "/tts/bytes")]
    assert spoken == [("sonic-2", "de"), ("sonic-3.5", "it"), ("sonic-3.5", "it")]


async def test_voices_past_the_first_page_are_found_so_a_lost_clone_is_not_cloned_twice(
    cartesia_fake: tuple[CartesiaFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    """2026-03-01 pages carry ``data`` only (the SDK's ``CursorIDPage``), so paging stops at an empty page,
    never at a missing ``has_more``."""
    fake, url = cartesia_fake
    for n in range(150):
        fake.voices[f"v{n:03}"] = CartesiaVoice(f"v{n:03}", f"Voice {n}", None, "en")
    fake.faults.fail_next(Fault("lost", path_prefix="/voices/clone"))
    provider = make(url, http_client, rng)
    voice = await enrol(provider, key="k-far")
    assert len(fake.requests_to("POST", "/voices/clone")) == 1
    assert len(fake.voices) == 151
    assert len(await provider.list()) == 151
    listing = fake.requests_to("GET", "/voices")[-3:]
    assert [r.query.get("starting_after") for r in listing] == [None, ["v099"], [voice.voice_id]]


async def test_a_sunset_model_and_an_unknown_voice_say_the_voice_must_be_cloned_again(
    cartesia_fake: tuple[CartesiaFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = cartesia_fake
    provider = make(url, http_client, rng)
    voice = await enrol(provider)

    with pytest.raises(ModelRetiredError) as sunset:
        await provider.synthesize(msgspec.structs.replace(voice, target_model="sonic-2-2025-03-07"), "hi")
    assert (sunset.value.provider_code, sunset.value.http_status) == ("model_sunsetted", 400)
    fake.sunset.add("sonic-3.5")
    with pytest.raises(ModelRetiredError):
        await provider.synthesize(voice, "hi")
    assert len(fake.requests_to("POST", "/tts/bytes")) == 2  # permanent: not retried

    fake.sunset.clear()
    fake.voices.clear()
    with pytest.raises(VoiceNotFoundError) as gone:
        await provider.synthesize(voice, "hi")
    assert gone.value.http_status == 404


@pytest.mark.parametrize("version", ["2025-04-16", "2026-03-01"])
async def test_a_language_sunset_on_the_voices_model_is_a_retired_model_in_either_error_shape(
    cartesia_fake: tuple[CartesiaFake, str], http_client: httpx.AsyncClient, rng: random.Random, version: str
) -> None:
    """An Italian voice cloned for ``sonic-2`` (main's adapter pinned it for every voice) since Italian was
    sunset on it: ``model_sunsetted`` as JSON, or as ``Model sunsetted: ...`` text before 2026-03-01."""
    _, url = cartesia_fake
    provider = make(url, http_client, rng, version=version)
    voice = msgspec.structs.replace(await enrol(provider, language="it"), target_model="sonic-2", language=None)
    with pytest.raises(ModelRetiredError) as sunset:
        await provider.synthesize(voice, "Ciao")
    assert sunset.value.http_status == 400
    assert sunset.value.operator_detail == "The requested model has been sunsetted and is no longer available."


async def test_unsupported_language_is_refused_before_any_call(
    cartesia_fake: tuple[CartesiaFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = cartesia_fake
    with pytest.raises(PermanentProviderError) as err:
        await enrol(make(url, http_client, rng), language="xx")
    assert "language 'xx' is not supported" in err.value.safe_message
    assert fake.requests == []


async def test_lost_clone_is_found_by_marker(
    cartesia_fake: tuple[CartesiaFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = cartesia_fake
    fake.faults.fail_next(Fault("lost", path_prefix="/voices/clone"))
    voice = await enrol(make(url, http_client, rng), key="k-lost")
    assert len(fake.requests_to("POST", "/voices/clone")) == 1
    assert list(fake.voices) == [voice.voice_id]


async def test_5xx_on_clone_is_an_unknown_outcome_then_adopted(
    cartesia_fake: tuple[CartesiaFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = cartesia_fake
    fake.faults.fail_next(Fault("status", 502, path_prefix="/voices/clone"))
    voice = await enrol(make(url, http_client, rng), key="k-502")
    # 502 came before the fake acted, so the lookup found nothing and one more clone was sent.
    assert len(fake.requests_to("POST", "/voices/clone")) == 2
    assert list(fake.voices) == [voice.voice_id]


async def test_tts_concurrency_limit_retries_then_succeeds(
    cartesia_fake: tuple[CartesiaFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = cartesia_fake
    provider = make(url, http_client, rng)
    voice = await enrol(provider)
    fake.faults.fail_next(Fault("status", 429, path_prefix="/tts/bytes"), times=2)
    result = await provider.synthesize(voice, "hello")
    assert result.audio.startswith(b"RIFF")
    assert len(fake.requests_to("POST", "/tts/bytes")) == 3
    fake.faults.fail_next(Fault("status", 429, path_prefix="/tts/bytes"), times=10)
    with pytest.raises(TransientProviderError) as err:
        await provider.synthesize(voice, "hello")
    assert err.value.provider_code == "concurrency_limited"
