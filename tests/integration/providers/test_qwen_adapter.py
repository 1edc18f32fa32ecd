"""Qwen adapter against the DashScope fake: lifecycle, request shapes, errors, lost answers."""

from __future__ import annotations

import base64
import random
import time

import httpx
import msgspec
import pytest

from backend.providers.base import ProviderVoice, SampleRef
from backend.providers.enrolment import qwen_preferred_name as preferred_name
from backend.providers.errors import (
    ModelRetiredError,
    PermanentProviderError,
    TransientProviderError,
    UnknownOutcomeError,
    VoiceNotFoundError,
)
from backend.providers.qwen import TARGET_MODEL, QwenProvider
from fakes import Fault, QwenFake, RecordedRequest
from tests.provider_support import FAST_POLICY, QWEN_KEY, SHORT_TIMEOUT, settings_for, wav_sample

CUSTOMIZATION = "/api/v1/services/audio/tts/customization"
GENERATION = "/api/v1/services/aigc/multimodal-generation/generation"


def make(url: str, client: httpx.AsyncClient, rng: random.Random, key: str = QWEN_KEY) -> QwenProvider:
    settings = settings_for(DASHSCOPE_API_KEY=key, QWEN_REGION="intl", DASHSCOPE_BASE_URL=url)
    return QwenProvider(settings.sections["qwen"], client, policy=FAST_POLICY, rng=rng, create_timeout=SHORT_TIMEOUT)


async def test_lifecycle_enrol_find_get_list_synthesize_delete(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = qwen_fake
    provider = make(url, http_client, rng)
    voice = await provider.enrol(
        [wav_sample()], name="Ada", language="en-US", transcript="hello there", key="attempt-1"
    )
    assert voice.voice_id.startswith(f"qwen-tts-vc-{preferred_name('attempt-1')}-voice-")
    assert voice.target_model == TARGET_MODEL
    assert voice.request_id
    assert voice.metadata["fallback_mode"] is False
    assert voice.metadata["usage"] == {"count": 1}

    found = await provider.find("attempt-1")
    assert found is not None
    assert found.voice_id == voice.voice_id
    assert found.enrolment_key == "attempt-1"
    assert await provider.find("attempt-2") is None
    assert (await provider.get(voice.voice_id)).target_model == TARGET_MODEL
    assert [v.voice_id for v in await provider.list()] == [voice.voice_id]

    result = await provider.synthesize(voice, "Good morning")
    assert result.mime_type == "audio/wav"
    assert result.audio.startswith(b"RIFF")
    download = fake.requests_to("GET", "/fake-oss/")[-1]
    assert "authorization" not in download.headers  # no DashScope key sent to the object store

    await provider.delete(voice.voice_id)
    assert await provider.list() == []
    with pytest.raises(VoiceNotFoundError) as missing:
        await provider.delete(voice.voice_id)
    assert missing.value.provider_code == "BadRequest.VoiceNotFound"
    with pytest.raises(VoiceNotFoundError):
        await provider.get(voice.voice_id)


async def test_create_request_shape_with_data_url(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = qwen_fake
    sample = wav_sample()
    await make(url, http_client, rng).enrol(
        [sample], name="Ada", language="en", transcript="hello there", key="k-shape"
    )
    create = [r for r in fake.requests_to("POST", CUSTOMIZATION) if r.json()["input"]["action"] == "create"]
    assert len(create) == 1
    request = create[0]
    assert request.headers["authorization"] == f"Bearer {QWEN_KEY}"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["model"] == "qwen-voice-enrollment"
    assert body["input"] == {
        "action": "create",
        "target_model": TARGET_MODEL,
        "preferred_name": preferred_name("k-shape"),
        "audio": {"data": "data:audio/wav;base64," + base64.b64encode(sample.data).decode()},
        "text": "hello there",
        "language": "en",
    }
    assert len(preferred_name("k-shape")) <= 16
    assert preferred_name("k-shape").replace("_", "").isalnum()


async def test_public_url_is_preferred_and_synthesis_uses_voice_target_model(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = qwen_fake
    sample = SampleRef(
        data=b"x", mime_type="audio/wav", public_url="https://storage.example/signed?token=t", duration_s=8.0
    )
    provider = make(url, http_client, rng)
    voice = await provider.enrol([sample], name="Ada", language=None, transcript=None, key="k-url")
    create = fake.requests_to("POST", CUSTOMIZATION)[-1].json()["input"]
    assert create["audio"] == {"data": "https://storage.example/signed?token=t"}
    assert "text" not in create
    assert "language" not in create
    await provider.synthesize(voice, "Hi")
    generation = fake.requests_to("POST", "/api/v1/services/aigc/multimodal-generation/generation")[-1].json()
    assert generation == {"model": TARGET_MODEL, "input": {"text": "Hi", "voice": voice.voice_id}}


@pytest.mark.parametrize(
    "case",
    [
        (wav_sample(rate=16000), "Audio.AudioRateError", "sample rate is too low"),
        (wav_sample(seconds=1.0), "Audio.PreprocessError", "too little clear speech"),
        (SampleRef(data=b"not audio", mime_type="audio/wav"), "Audio.DecoderError", "could not be decoded"),
    ],
)
async def test_audio_errors_map_to_permanent_with_safe_message(
    qwen_fake: tuple[QwenFake, str],
    http_client: httpx.AsyncClient,
    rng: random.Random,
    case: tuple[SampleRef, str, str],
) -> None:
    sample, code, message = case
    _, url = qwen_fake
    # The rules check is bypassed by leaving measurements unset, so the provider itself rejects.
    unmeasured = SampleRef(data=sample.data, mime_type=sample.mime_type)
    with pytest.raises(PermanentProviderError) as err:
        await make(url, http_client, rng).enrol([unmeasured], name="Ada", language="en", transcript=None, key="k-bad")
    assert err.value.provider_code == code
    assert err.value.http_status == 400
    assert message in err.value.safe_message


async def test_long_sample_is_refused_before_any_call(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = qwen_fake
    with pytest.raises(PermanentProviderError) as err:
        await make(url, http_client, rng).enrol(
            [wav_sample(seconds=61.0)], name="Ada", language="en", transcript=None, key="k-long"
        )
    assert err.value.provider_code == "sample_rules"
    assert "sample too long" in err.value.safe_message
    assert fake.requests == []


async def test_wrong_key_and_voice_quota_are_permanent(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = qwen_fake
    with pytest.raises(PermanentProviderError) as auth:
        await make(url, http_client, rng, key="sk-wrong").list()
    assert (auth.value.http_status, auth.value.provider_code) == (401, "InvalidApiKey")
    assert "sk-wrong" not in str(auth.value)
    assert "sk-wrong" not in repr(auth.value)

    fake.max_voices = 0
    with pytest.raises(PermanentProviderError) as quota:
        await make(url, http_client, rng).enrol(
            [wav_sample()], name="Ada", language="en", transcript=None, key="k-quota"
        )
    assert quota.value.provider_code == "Throttling.AllocationQuota"
    assert "delete unused voices" in quota.value.safe_message


async def test_fallback_mode_is_kept(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = qwen_fake
    fake.fallback_reason = "no_valid_asr_segments"
    voice = await make(url, http_client, rng).enrol(
        [wav_sample()], name="Ada", language="en", transcript=None, key="k-fb"
    )
    assert voice.metadata["fallback_mode"] is True
    assert voice.metadata["fallback_reason"] == "no_valid_asr_segments"


def is_create(request: RecordedRequest) -> bool:
    return request.path == CUSTOMIZATION and request.json()["input"]["action"] == "create"


def creates(fake: QwenFake) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method == "POST" and is_create(r)]


async def test_lost_create_answer_is_found_by_key_not_repeated(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = qwen_fake
    fake.faults.fail_next(Fault("lost", when=is_create))
    voice = await make(url, http_client, rng).enrol(
        [wav_sample()], name="Ada", language="en", transcript=None, key="k-lost"
    )
    assert len(creates(fake)) == 1
    assert list(fake.voices) == [voice.voice_id]
    assert voice.enrolment_key == "k-lost"


async def test_create_that_never_happened_is_sent_again_once(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = qwen_fake
    fake.faults.fail_next(Fault("timeout", when=is_create))
    voice = await make(url, http_client, rng).enrol(
        [wav_sample()], name="Ada", language="en", transcript=None, key="k-timeout"
    )
    assert len(creates(fake)) == 2
    assert list(fake.voices) == [voice.voice_id]


async def test_malformed_create_answer_is_an_unknown_outcome_resolved_by_lookup(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = qwen_fake
    fake.faults.fail_next(Fault("malformed", when=is_create), times=3)
    with pytest.raises(UnknownOutcomeError):
        await make(url, http_client, rng).enrol(
            [wav_sample()], name="Ada", language="en", transcript=None, key="k-malformed"
        )
    assert len(creates(fake)) == 3  # bounded: CREATE_ATTEMPTS, each after a lookup found nothing


async def test_outage_exhausts_retries_in_bounded_time(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = qwen_fake
    fake.faults.fail_at_rate(1.0, Fault("status", 503), seed=7)
    started = time.monotonic()
    with pytest.raises(TransientProviderError) as err:
        await make(url, http_client, rng).list()
    assert time.monotonic() - started < 2.0
    assert len(fake.requests) == FAST_POLICY.max_attempts
    assert (err.value.http_status, err.value.provider_code) == (503, "ModelUnavailable")


async def test_outage_during_enrol_gives_up_without_creating(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = qwen_fake
    fake.faults.fail_at_rate(1.0, Fault("status", 500), seed=7)
    with pytest.raises(TransientProviderError):
        await make(url, http_client, rng).enrol(
            [wav_sample()], name="Ada", language="en", transcript=None, key="k-outage"
        )
    assert fake.voices == {}


async def test_429_retry_after_is_honoured(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = qwen_fake
    fake.faults.fail_next(Fault("status", 429, retry_after="1"))
    started = time.monotonic()
    assert await make(url, http_client, rng).list() == []
    # FAST_POLICY's own backoff is at most 0.05 s, so only the header explains the wait.
    assert time.monotonic() - started >= 1.0
    assert len(fake.requests) == 2


async def test_429_retry_after_beyond_cap_is_returned_to_the_caller(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = qwen_fake
    fake.faults.fail_next(Fault("status", 429, retry_after="120"))
    with pytest.raises(TransientProviderError) as err:
        await make(url, http_client, rng).list()
    assert err.value.retry_after == 120.0
    assert err.value.provider_code == "Throttling.RateQuota"
    assert len(fake.requests) == 1


async def test_synthesis_with_unknown_voice_is_permanent(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    _, url = qwen_fake
    ghost = ProviderVoice(provider="qwen", voice_id="qwen-tts-vc-x-voice-1", target_model=TARGET_MODEL)
    with pytest.raises(PermanentProviderError) as err:
        await make(url, http_client, rng).synthesize(ghost, "Hi")
    assert err.value.provider_code == "InvalidParameter"


@pytest.mark.parametrize("call", ["synthesize", "stream"])
async def test_a_deleted_voice_or_a_retired_model_says_the_voice_must_be_enrolled_again(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient, rng: random.Random, call: str
) -> None:
    """Whole or streamed (where the fake answers the error as an SSE ``error`` event), the same mapping."""
    fake, url = qwen_fake
    provider = make(url, http_client, rng)
    voice = await provider.enrol([wav_sample()], name="Ada", language="en", transcript=None, key="attempt-r")

    async def speak(voice: ProviderVoice) -> None:
        if call == "stream":
            _ = [chunk async for chunk in provider.stream(voice, "hi")]
        else:
            await provider.synthesize(voice, "hi")

    with pytest.raises(ModelRetiredError) as retired:
        await speak(msgspec.structs.replace(voice, target_model="qwen3-tts-vc-2025-09-01"))
    assert (retired.value.provider_code, retired.value.http_status) == ("ModelNotFound", 404)
    assert retired.value.request_id
    fake.voices.clear()
    with pytest.raises(VoiceNotFoundError) as gone:
        await speak(voice)
    assert (gone.value.provider_code, gone.value.http_status) == ("InvalidParameter", 400)


async def test_an_sse_request_gets_its_errors_as_sse(
    qwen_fake: tuple[QwenFake, str], http_client: httpx.AsyncClient
) -> None:
    """The fake frames an error as DashScope does for a request that asked for SSE, injected faults included:
    one ``event:error`` carrying the JSON envelope, under the error's own status."""
    fake, url = qwen_fake
    headers = {"Authorization": f"Bearer {QWEN_KEY}", "X-DashScope-SSE": "enable"}
    body = {"model": TARGET_MODEL, "input": {"text": "hi", "voice": "nobody"}}
    fake.faults.fail_next(Fault("status", 429, retry_after="3"))
    busy = await http_client.post(f"{url}{GENERATION}", headers=headers, json=body)
    missing = await http_client.post(f"{url}{GENERATION}", headers=headers, json=body)
    plain = await http_client.post(f"{url}{GENERATION}", headers={"Authorization": headers["Authorization"]}, json=body)

    for answer, status, code in [(busy, 429, "Throttling.RateQuota"), (missing, 400, "InvalidParameter")]:
        assert (answer.status_code, answer.headers["content-type"]) == (status, "text/event-stream;charset=UTF-8")
        event = dict(line.split(":", 1) for line in answer.text.splitlines() if line and not line.startswith(":"))
        assert event["event"] == "error"
        assert f":HTTP_STATUS/{status}" in answer.text.splitlines()
        assert msgspec.json.decode(event["data"])["code"] == code
    assert busy.headers["retry-after"] == "3"
    assert plain.headers["content-type"] == "application/json"
    assert plain.json()["code"] == "InvalidParameter"
