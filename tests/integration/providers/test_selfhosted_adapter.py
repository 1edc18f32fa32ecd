"""The `selfhosted` adapter against the fake OpenAI-shaped server: registry and inline servers, `auto`
telling them apart, lost creates, errors, and the Modal profile (proxy auth, 303 polling, cold starts,
warm-up before an enrolment, a registry that vanishes with its container)."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator

import httpx
import msgspec
import pytest

from backend.providers.base import ProviderVoice
from backend.providers.enrolment import key_tag, selfhosted_voice_name
from backend.providers.errors import (
    PermanentProviderError,
    TransientProviderError,
    UnknownOutcomeError,
    VoiceNotFoundError,
)
from backend.providers.selfhosted import SelfhostedProvider
from backend.providers.selfhosted_store import InMemoryReferenceStore
from fakes import Fault, SelfhostedFake, serve
from fakes.core import FakeProvider, RecordedRequest, Response
from fakes.selfhosted import MODEL
from tests.provider_support import FAST_POLICY, settings_for, wav_sample

KEY = "vg-attempt-1"


def make(
    url: str, client: httpx.AsyncClient, rng: random.Random, **env: str
) -> tuple[SelfhostedProvider, InMemoryReferenceStore]:
    settings = settings_for(SELFHOSTED_BASE_URL=url, SELFHOSTED_MODEL=MODEL, **env)
    store = InMemoryReferenceStore()
    return SelfhostedProvider(settings.sections["selfhosted"], client, store=store, policy=FAST_POLICY, rng=rng), store


async def enrol(provider: SelfhostedProvider, key: str = KEY, transcript: str | None = "Hello there.") -> ProviderVoice:
    sample = msgspec.structs.replace(wav_sample(), consent_id="consent-1")
    return await provider.enrol([sample], name="Ada", language="en-GB", transcript=transcript, key=key)


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[SelfhostedFake, str]]:
    fake = SelfhostedFake(**getattr(request, "param", {}))
    with serve(fake) as url:
        yield fake, url


@pytest.mark.parametrize("served", [{"mode": "registry"}], indirect=True)
async def test_registry_lifecycle_and_request_shapes(
    served: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = served
    provider, store = make(url, http_client, rng)

    voice = await enrol(provider)

    name = selfhosted_voice_name(KEY)
    assert (voice.voice_id, voice.enrolment_key, voice.target_model) == (name, KEY, MODEL)
    assert voice.metadata["mode"] == "registry"
    assert key_tag(voice) is not None
    assert key_tag(voice).matches(KEY)  # type: ignore[union-attr]
    assert list(fake.voices) == [name]
    assert store.voices == {}
    upload = fake.requests_to("POST", "/v1/audio/voices")[0].form_fields()
    assert sorted(upload) == ["audio_sample", "consent", "name", "ref_text"]
    assert (upload["name"][0].text, upload["consent"][0].text, upload["ref_text"][0].text) == (
        name,
        "consent-1",
        "Hello there.",
    )
    assert (upload["audio_sample"][0].filename, upload["audio_sample"][0].content_type) == ("sample.wav", "audio/wav")
    found = await provider.find(KEY)
    assert found is not None
    assert (found.voice_id, found.enrolment_key) == (name, KEY)
    assert await provider.find("another key") is None
    assert (await provider.get(name)).voice_id == name
    assert [v.voice_id for v in await provider.list()] == [name]

    spoken = await provider.synthesize(voice, "Good morning")

    assert (spoken.mime_type, spoken.audio[:4]) == ("audio/wav", b"RIFF")
    speech = fake.requests_to("POST", "/v1/audio/speech")[0].json()
    assert speech == {"input": "Good morning", "response_format": "wav", "voice": name, "model": MODEL}
    await provider.delete(name)
    assert fake.voices == {}
    with pytest.raises(VoiceNotFoundError):
        await provider.delete(name)
    with pytest.raises(VoiceNotFoundError):
        await provider.get(name)
    with pytest.raises(VoiceNotFoundError):
        await provider.synthesize(voice, "Still there?")


@pytest.mark.parametrize("served", [{"mode": "inline"}], indirect=True)
async def test_auto_finds_no_registry_and_sends_the_reference_inline(
    served: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = served
    provider, store = make(url, http_client, rng)

    voice = await enrol(provider)

    assert await provider.mode() == "inline"
    # Neither registry (404 on both), and the server refused a reference that is no audio: it reads ref_audio.
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", "/v1/audio/voices"),
        ("GET", "/v1/voices"),
        ("POST", "/v1/audio/speech"),
    ]
    assert voice.metadata["mode"] == "inline"
    assert list(store.voices) == [voice.voice_id] == [selfhosted_voice_name(KEY)]
    assert (await enrol(provider)).voice_id == voice.voice_id  # the same key adopts the same voice
    assert len(store.voices) == 1

    await provider.synthesize(voice, "Good morning")

    speech = fake.requests_to("POST", "/v1/audio/speech")[1].json()
    assert set(speech) == {"input", "response_format", "model", "ref_audio", "ref_text"}
    assert speech["ref_audio"].startswith("data:audio/wav;base64,")
    assert base64.b64decode(speech["ref_audio"].split(",", 1)[1]) == wav_sample().data
    assert (speech["ref_text"], fake.speeches[-1]["voice"]) == ("Hello there.", "inline")
    assert [v.voice_id for v in await provider.list()] == [voice.voice_id]
    await provider.delete(voice.voice_id)
    with pytest.raises(VoiceNotFoundError):
        await provider.synthesize(voice, "Gone?")
    with pytest.raises(VoiceNotFoundError):
        await provider.get(voice.voice_id)


@pytest.mark.parametrize("served", [{"mode": "registry"}], indirect=True)
async def test_forced_inline_mode_never_touches_the_registry(
    served: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = served
    provider, store = make(url, http_client, rng, SELFHOSTED_VOICE_REGISTRY="inline")

    voice = await enrol(provider, transcript=None)
    await provider.synthesize(voice, "Hi")

    assert fake.requests_to("GET", "/v1/audio/voices") == fake.requests_to("POST", "/v1/audio/voices") == []
    assert "ref_text" not in fake.requests_to("POST", "/v1/audio/speech")[-1].json()
    assert fake.voices == {}
    assert len(store.voices) == 1


@pytest.mark.parametrize("served", [{"mode": "inline"}], indirect=True)
async def test_registry_mode_against_a_server_without_one_is_refused(
    served: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    _, url = served
    provider, _ = make(url, http_client, rng, SELFHOSTED_VOICE_REGISTRY="registry")
    with pytest.raises(PermanentProviderError) as refused:
        await enrol(provider)
    assert refused.value.http_status == 404


@pytest.mark.parametrize("served", [{"mode": "registry"}], indirect=True)
async def test_a_lost_create_is_found_by_its_name_not_made_twice(
    served: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = served
    provider, _ = make(url, http_client, rng, SELFHOSTED_TIMEOUT_SECONDS="0.5")
    fake.faults.fail_next(Fault("lost", method="POST", path_prefix="/v1/audio/voices"))

    voice = await enrol(provider)

    assert list(fake.voices) == [voice.voice_id]
    assert len(fake.requests_to("POST", "/v1/audio/voices")) == 1
    assert voice.enrolment_key == KEY


@pytest.mark.parametrize("served", [{"mode": "registry"}], indirect=True)
async def test_a_5xx_on_create_is_an_unknown_outcome_resolved_by_lookup(
    served: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = served
    provider, _ = make(url, http_client, rng)
    fake.faults.fail_next(Fault("status", 503, method="POST", path_prefix="/v1/audio/voices"), times=3)

    with pytest.raises(UnknownOutcomeError):
        await enrol(provider)
    assert fake.voices == {}
    assert len(fake.requests_to("POST", "/v1/audio/voices")) == 3

    fake.faults.clear()
    fake.faults.fail_next(Fault("status", 503, path_prefix="/v1/audio/speech"))
    voice = await enrol(provider)
    assert (await provider.synthesize(voice, "Hi")).audio  # a 503 on speech is retried
    assert len(fake.requests_to("POST", "/v1/audio/speech")) == 2


@pytest.mark.parametrize("served", [{"mode": "registry", "api_key": "sk-local-secret"}], indirect=True)
async def test_bearer_key_is_sent_and_a_wrong_one_is_a_clear_permanent_error(
    served: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = served
    good, _ = make(url, http_client, rng, SELFHOSTED_API_KEY="sk-local-secret")
    await enrol(good)
    assert fake.requests[-1].headers["authorization"] == "Bearer sk-local-secret"

    bad, _ = make(url, http_client, rng, SELFHOSTED_API_KEY="sk-wrong")
    with pytest.raises(PermanentProviderError, match="credentials") as refused:
        await bad.list()
    assert refused.value.http_status == 401
    assert "sk-wrong" not in repr(refused.value)


@pytest.mark.parametrize("served", [{"mode": "registry"}], indirect=True)
async def test_a_model_the_server_does_not_serve_is_a_configuration_error(
    served: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    _, url = served
    provider, _ = make(url, http_client, rng)
    voice = await enrol(provider)
    other = SelfhostedProvider(
        settings_for(SELFHOSTED_BASE_URL=url, SELFHOSTED_MODEL="some/other-model").sections["selfhosted"],
        http_client,
        store=InMemoryReferenceStore(),
        policy=FAST_POLICY,
    )
    with pytest.raises(PermanentProviderError, match="SELFHOSTED_MODEL") as refused:
        await other.synthesize(voice, "Hi")
    assert not isinstance(refused.value, VoiceNotFoundError)


MODAL = {"SELFHOSTED_PROFILE": "modal", "MODAL_KEY": "wk-test-key", "MODAL_SECRET": "ws-test-secret"}


@pytest.mark.parametrize("served", [{"mode": "modal", "cold_start_s": 0.6, "result_cap_s": 0.2}], indirect=True)
async def test_modal_cold_start_303_polling_and_warm_up_before_enrolment(
    served: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = served
    provider, _ = make(url, http_client, rng, **MODAL)

    voice = await enrol(provider)

    # The warm-up (the registry probe) met the cold start: a 303 after 0.2 s, then polled to its result.
    first, *rest = fake.requests
    assert (first.method, first.path) == ("GET", "/v1/audio/voices")
    assert (first.headers["modal-key"], first.headers["modal-secret"]) == ("wk-test-key", "ws-test-secret")
    assert fake.cold_starts == 1
    assert fake.polls >= 1
    assert rest[0].path.startswith("/__modal/result/")
    assert all(r.headers.get("modal-key") == "wk-test-key" for r in fake.requests)
    assert list(fake.voices) == [voice.voice_id]
    assert fake.requests_to("POST", "/v1/audio/voices")

    fake.speech_delay_s = 0.5  # longer than Modal's cap: answered by a 303, polled
    polls = fake.polls
    spoken = await provider.synthesize(voice, "Good morning")
    assert spoken.audio[:4] == b"RIFF"
    assert fake.polls > polls


@pytest.mark.parametrize("served", [{"mode": "modal"}], indirect=True)
async def test_modal_without_proxy_auth_is_refused_and_a_lost_container_loses_its_registry(
    served: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = served
    unauthenticated, _ = make(url, http_client, rng, SELFHOSTED_PROFILE="modal")
    with pytest.raises(PermanentProviderError, match="credentials") as refused:
        await enrol(unauthenticated)
    assert refused.value.http_status == 401

    provider, _ = make(url, http_client, rng, **MODAL)
    voice = await enrol(provider)
    fake.scale_down()  # no Volume: the next container starts with an empty registry
    with pytest.raises(VoiceNotFoundError):
        await provider.synthesize(voice, "Hello?")
    assert fake.cold_starts == 2


@pytest.mark.parametrize("served", [{"mode": "modal", "result_cap_s": 0.05, "speech_delay_s": 5.0}], indirect=True)
async def test_modal_polling_gives_up_at_the_deadline(
    served: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = served
    provider, _ = make(url, http_client, rng, **MODAL, SELFHOSTED_TIMEOUT_SECONDS="0.5")
    voice = await enrol(provider)
    with pytest.raises(TransientProviderError, match="did not finish in time"):
        await provider.synthesize(voice, "This takes too long.")
    assert fake.polls >= 2


class _Elsewhere(FakeProvider):
    """A server whose answer redirects to another origin."""

    def __init__(self) -> None:
        super().__init__()
        self.route("GET", "/v1/audio/voices", self._moved)

    async def _moved(self, _: RecordedRequest, __: dict[str, str]) -> Response:
        return Response(303, b"", [("location", "https://collector.example/steal")])


async def test_a_303_off_the_configured_origin_is_not_followed(
    http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake = _Elsewhere()
    with serve(fake) as url:
        provider, _ = make(url, http_client, rng, SELFHOSTED_VOICE_REGISTRY="registry")
        with pytest.raises(TransientProviderError, match="redirected off its origin"):
            await provider.list()
    assert len(fake.requests) == 1
