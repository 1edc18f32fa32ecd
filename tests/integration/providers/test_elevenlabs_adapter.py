"""ElevenLabs adapter against its fake: lifecycle, request shapes, both error shapes, lost answers."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import msgspec
import pytest

from backend.providers.base import ProviderVoice
from backend.providers.elevenlabs import KEY_LABEL, ElevenLabsProvider
from backend.providers.enrolment import key_marker
from backend.providers.errors import PermanentProviderError, TransientProviderError, VoiceNotFoundError
from fakes import ElevenLabsFake, Fault
from tests.provider_support import ELEVEN_KEY, FAST_POLICY, SHORT_TIMEOUT, settings_for, wav_sample


def make(url: str, client: httpx.AsyncClient, rng: random.Random, **kwargs: Any) -> ElevenLabsProvider:
    settings = settings_for(ELEVENLABS_API_KEY=kwargs.pop("key", ELEVEN_KEY), ELEVENLABS_BASE_URL=url)
    return ElevenLabsProvider(
        settings.sections["elevenlabs"], client, policy=FAST_POLICY, rng=rng, create_timeout=SHORT_TIMEOUT, **kwargs
    )


async def enrol(provider: ElevenLabsProvider, key: str = "attempt-1", freq: float = 180.0) -> ProviderVoice:
    return await provider.enrol([wav_sample(freq=freq)], name="Ada", language="en", transcript=None, key=key)


async def test_lifecycle(
    eleven_fake: tuple[ElevenLabsFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = eleven_fake
    provider = make(url, http_client, rng)
    voice = await enrol(provider)
    assert voice.voice_id in fake.voices
    assert voice.metadata["requires_verification"] is False
    found = await provider.find("attempt-1")
    assert found is not None
    assert found.voice_id == voice.voice_id
    assert await provider.find("other") is None
    got = await provider.get(voice.voice_id)
    assert (got.name, got.enrolment_key, got.language) == ("Ada", "attempt-1", "en")
    assert [v.voice_id for v in await provider.list()] == [voice.voice_id]

    result = await provider.synthesize(voice, "Good morning to you")
    assert result.mime_type == "audio/mpeg"
    assert result.audio[:2] == b"\xff\xfb"
    assert result.request_id

    await provider.delete(voice.voice_id)
    assert await provider.list() == []
    with pytest.raises(VoiceNotFoundError):
        await provider.get(voice.voice_id)


async def test_list_follows_pages(
    eleven_fake: tuple[ElevenLabsFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = eleven_fake
    fake.max_voices = 200
    provider = make(url, http_client, rng)
    for index in range(3):
        await enrol(provider, key=f"k{index}", freq=150.0 + index)
    voices = await make(url, http_client, rng, page_size=2).list()
    assert sorted(v.enrolment_key or "" for v in voices) == ["k0", "k1", "k2"]
    tokens = [r.query.get("next_page_token") for r in fake.requests_to("GET", "/v2/voices")[-2:]]
    assert tokens == [None, ["2"]]


async def test_request_shapes(
    eleven_fake: tuple[ElevenLabsFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = eleven_fake
    provider = make(url, http_client, rng, output_format="pcm_24000")
    voice = await enrol(provider, key="k-shape")
    add = fake.requests_to("POST", "/v1/voices/add")[0]
    assert add.headers["xi-api-key"] == ELEVEN_KEY
    assert add.headers["content-type"].startswith("multipart/form-data; boundary=")
    fields = add.form_fields()
    assert sorted(fields) == ["description", "files", "labels", "name", "remove_background_noise"]
    assert fields["name"][0].text == "Ada"
    # Unmeasured (no quality report): the API's own default, no audio isolation.
    assert fields["remove_background_noise"][0].text == "false"
    assert fake.voices[voice.voice_id].samples[0]["remove_background_noise"] is False
    assert json.loads(fields["labels"][0].text) == {KEY_LABEL: "k-shape", "language": "en"}
    assert key_marker("k-shape") in fields["description"][0].text
    (upload,) = fields["files"]
    assert (upload.filename, upload.content_type) == ("sample.wav", "audio/wav")
    assert upload.data.startswith(b"RIFF")

    result = await provider.synthesize(voice, "Hello")
    tts = fake.requests_to("POST", "/v1/text-to-speech/")[-1]
    assert tts.path == f"/v1/text-to-speech/{voice.voice_id}"
    assert tts.query == {"output_format": ["pcm_24000"]}
    assert tts.json() == {"text": "Hello", "model_id": "eleven_multilingual_v2"}
    assert (result.mime_type, result.sample_rate) == ("audio/wav", 24000)
    assert result.audio.startswith(b"RIFF")

    list_request = fake.requests_to("GET", "/v2/voices")[0]
    assert list_request.query["voice_type"] == ["personal"]
    assert list_request.query["page_size"] == ["100"]


@pytest.mark.parametrize("status", [404, 400])
async def test_voice_not_found_in_both_shapes(
    eleven_fake: tuple[ElevenLabsFake, str], http_client: httpx.AsyncClient, rng: random.Random, status: int
) -> None:
    fake, url = eleven_fake
    fake.voice_not_found_status = status
    provider = make(url, http_client, rng)
    for call in (provider.get("nope"), provider.delete("nope")):
        with pytest.raises(VoiceNotFoundError) as err:
            await call
        assert (err.value.http_status, err.value.provider_code) == (status, "voice_not_found")
        assert err.value.safe_message == "The voice does not exist at the provider."
    ghost = ProviderVoice(provider="elevenlabs", voice_id="nope")
    with pytest.raises(VoiceNotFoundError):
        await provider.synthesize(ghost, "hi")


async def test_quota_exceeded_401_is_not_an_auth_failure(
    eleven_fake: tuple[ElevenLabsFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = eleven_fake
    provider = make(url, http_client, rng)
    voice = await enrol(provider)
    fake.quota_exhausted = True
    with pytest.raises(PermanentProviderError) as quota:
        await provider.synthesize(voice, "hello")
    assert (quota.value.http_status, quota.value.provider_code) == (401, "quota_exceeded")
    assert "quota" in quota.value.safe_message
    assert "credentials" not in quota.value.safe_message

    with pytest.raises(PermanentProviderError) as auth:
        await make(url, http_client, rng, key="sk_wrong_key_000").list()
    assert (auth.value.http_status, auth.value.provider_code) == (401, "invalid_api_key")
    assert "credentials" in auth.value.safe_message


async def test_create_errors(
    eleven_fake: tuple[ElevenLabsFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = eleven_fake
    provider = make(url, http_client, rng)
    first = await enrol(provider, key="first")
    # The same audio for another voice is sent in other bytes (tagged with its key): ElevenLabs takes it.
    second = await enrol(provider, key="second")
    assert second.voice_id != first.voice_id
    with pytest.raises(PermanentProviderError) as dup:  # one file twice in one create is still refused
        await provider.enrol([wav_sample(), wav_sample()], name="Ada", language="en", transcript=None, key="twice")
    assert dup.value.provider_code == "duplicate_files"
    fake.max_voices = 2
    with pytest.raises(PermanentProviderError) as limit:
        await enrol(provider, key="third", freq=300.0)
    assert (limit.value.http_status, limit.value.provider_code) == (400, "voice_limit_reached")
    assert "custom-voice slot" in limit.value.safe_message


async def test_validation_list_and_bare_5xx_shapes(
    eleven_fake: tuple[ElevenLabsFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = eleven_fake
    provider = make(url, http_client, rng, output_format="mp3_1_1")
    voice = await enrol(provider)
    with pytest.raises(PermanentProviderError) as invalid:
        await provider.synthesize(voice, "hello")
    assert (invalid.value.http_status, invalid.value.provider_code) == (422, "validation_error")
    assert "enumeration" in (invalid.value.operator_detail or "")

    fake.faults.fail_at_rate(1.0, Fault("status", 500), seed=3)
    with pytest.raises(TransientProviderError) as outage:
        await provider.list()
    assert (outage.value.http_status, outage.value.provider_code) == (500, "internal_server_error")


async def test_lost_create_is_found_by_label(
    eleven_fake: tuple[ElevenLabsFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = eleven_fake
    fake.faults.fail_next(Fault("lost", method="POST", path_prefix="/v1/voices/add"))
    noisy = msgspec.structs.replace(wav_sample(), snr_db=12.0)
    voice = await make(url, http_client, rng).enrol([noisy], name="Ada", language="en", transcript=None, key="k-lost")
    (add,) = fake.requests_to("POST", "/v1/voices/add")
    assert list(fake.voices) == [voice.voice_id]
    # The voice adopted by its label still records the choice its create was sent.
    assert add.form_fields()["remove_background_noise"][0].text == "true"
    assert (voice.metadata["remove_background_noise"], voice.metadata["sample_snr_db"]) == (True, 12.0)


async def test_429_on_create_is_retried_safely(
    eleven_fake: tuple[ElevenLabsFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = eleven_fake
    fake.faults.fail_next(Fault("status", 429, retry_after="0", path_prefix="/v1/voices/add"))
    voice = await enrol(make(url, http_client, rng), key="k-429")
    assert len(fake.requests_to("POST", "/v1/voices/add")) == 2
    assert list(fake.voices) == [voice.voice_id]
