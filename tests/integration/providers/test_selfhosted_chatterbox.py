"""The `selfhosted` adapter against chatterbox-tts-api as its source says it behaves, and the inline
probe that keeps a server which drops `ref_audio` from speaking in its default voice with a 200.

The request shapes are pinned to chatterbox-tts-api's own request models, read at
travisvn/chatterbox-tts-api@a5f466128e4baa8e4cceb3bba9b7ca9de6f7ec6b (2025-12-22):
  * app/models/requests.py, `TTSRequest`: the JSON body of `POST /v1/audio/speech` and
    `POST /v1/audio/speech/stream` (pydantic, unknown fields dropped: it has no `ref_audio`, `ref_text`
    or `model`); `response_format` "always returns WAV";
  * app/api/endpoints/voices.py, `upload_voice`: `POST /v1/voices` multipart `voice_name` (Form, 1-100
    characters), `voice_file` (File; .mp3 .wav .flac .m4a .ogg), `language` (Form, 2-5 characters,
    default "en"); `get_voice_info` / `delete_voice`: `GET` / `DELETE /v1/voices/{voice_name}`, 404
    `{"error": {"message": "Voice '...' not found", "type": "voice_not_found_error"}}`;
  * app/api/endpoints/speech.py, `resolve_voice_path_and_language`: a name not in the library is spoken
    in the default voice; `generate_speech_streaming`: a WAV header, then 16-bit PCM;
  * app/core/aliases.py: the `/v1/...` aliases of those routes.
"""

from __future__ import annotations

import io
import random
import wave
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest

from backend.providers.base import STREAM_SAMPLE_RATE, ProviderVoice
from backend.providers.enrolment import selfhosted_voice_name
from backend.providers.errors import PermanentProviderError, VoiceNotFoundError
from backend.providers.selfhosted import INLINE_RECHECK_S, SelfhostedProvider
from backend.providers.selfhosted_store import InlineVoice, InMemoryReferenceStore
from backend.wav import pcm16_to_wav
from fakes import SelfhostedFake, serve
from fakes.audio import tone_pcm
from fakes.core import RecordedRequest, Response, Streamed, chunked
from fakes.selfhosted import DEFAULT_PITCH, MODEL, SelfhostedVoice, voice_pitch
from tests.provider_support import FAST_POLICY, settings_for, wav_sample

KEY = "vg-attempt-1"
TEXT = "The first move is what sets everything in motion."

#: `TTSRequest`'s fields and their types (app/models/requests.py at the commit above).
TTS_REQUEST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "input": str,
    "voice": str,
    "response_format": str,
    "speed": (int, float),
    "stream_format": str,
    "exaggeration": (int, float),
    "cfg_weight": (int, float),
    "temperature": (int, float),
    "streaming_chunk_size": int,
    "streaming_strategy": str,
    "streaming_buffer_size": int,
    "streaming_quality": str,
}
#: `upload_voice`'s form fields (app/api/endpoints/voices.py): which are files.
UPLOAD_FIELDS = {"voice_name": False, "voice_file": True, "language": False}
VOICE_SUFFIXES = (".mp3", ".wav", ".flac", ".m4a", ".ogg")


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(
    url: str, client: httpx.AsyncClient, rng: random.Random, clock: Clock | None = None, **env: str
) -> tuple[SelfhostedProvider, InMemoryReferenceStore]:
    settings = settings_for(SELFHOSTED_BASE_URL=url, SELFHOSTED_MODEL=MODEL, **env)
    store = InMemoryReferenceStore()
    provider = SelfhostedProvider(
        settings.sections["selfhosted"], client, store=store, policy=FAST_POLICY, rng=rng, clock=clock or Clock()
    )
    return provider, store


async def enrol(provider: SelfhostedProvider) -> ProviderVoice:
    sample = msgspec.structs.replace(wav_sample(), consent_id="consent-1")
    return await provider.enrol([sample], name="Ada", language="de-AT", transcript="Hallo.", key=KEY)


def pitch(pcm: bytes, rate: int) -> float:
    """The strongest frequency of 16-bit mono PCM, in Hz."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[np.abs(np.fft.rfft(samples)).argmax()])


@pytest.fixture
def chatterbox() -> Iterator[tuple[SelfhostedFake, str]]:
    fake = SelfhostedFake("chatterbox")
    with serve(fake) as url:
        yield fake, url


def assert_tts_request(body: Any) -> None:
    assert isinstance(body, dict)
    assert set(body) <= set(TTS_REQUEST_FIELDS), set(body) - set(TTS_REQUEST_FIELDS)
    for name, value in body.items():
        assert isinstance(value, TTS_REQUEST_FIELDS[name]), (name, value)
    assert 1 <= len(body["input"].strip()) <= 3000


async def test_requests_are_chatterbox_request_models(
    chatterbox: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    """Every request the adapter sends a chatterbox server (found by `auto`, the default), field by field
    against chatterbox's own models: no field its `TTSRequest` would drop, the library's form fields."""
    fake, url = chatterbox
    provider, _ = make(url, http_client, rng)
    name = selfhosted_voice_name(KEY)

    voice = await enrol(provider)
    await provider.list()
    await provider.synthesize(voice, TEXT)
    async for _ in provider.stream(voice, TEXT):
        pass
    await provider.delete(voice.voice_id)

    speeches = fake.requests_to("POST", "/v1/audio/speech")
    assert len(speeches) == 2
    for request in speeches:
        body = request.json()
        assert_tts_request(body)
        assert (body["input"], body["voice"]) == (TEXT, name)
    upload = fake.requests_to("POST", "/v1/voices")[0]
    assert upload.headers["content-type"].startswith("multipart/form-data")
    parts = upload.form_fields()
    assert set(parts) == set(UPLOAD_FIELDS)
    for field_name, is_file in UPLOAD_FIELDS.items():
        assert len(parts[field_name]) == 1
        assert (parts[field_name][0].filename is not None) is is_file, field_name
    assert parts["voice_name"][0].text == name
    assert 1 <= len(name) <= 100
    assert parts["language"][0].text == "de"
    assert parts["voice_file"][0].filename is not None
    assert parts["voice_file"][0].filename.endswith(VOICE_SUFFIXES)
    assert parts["voice_file"][0].data == wav_sample().data
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", "/v1/audio/voices"),  # `auto`: 404, not OpenAI's registry
        ("GET", "/v1/voices"),  # chatterbox's library
        ("GET", f"/v1/voices/{name}"),  # find: the key's voice is not there yet
        ("POST", "/v1/voices"),
        ("GET", "/v1/voices"),
        ("GET", f"/v1/voices/{name}"),  # a name not in the library would be spoken in the default voice
        ("POST", "/v1/audio/speech"),
        ("GET", f"/v1/voices/{name}"),
        ("POST", "/v1/audio/speech/stream"),
        ("DELETE", f"/v1/voices/{name}"),
    ]


async def test_chatterbox_lifecycle_speaks_the_registered_voice(
    chatterbox: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    """`auto` finds chatterbox's library (not inline), and every synthesis is heard in the enrolled voice:
    a float WAV comes back as 16-bit PCM WAV, a stream as PCM without its WAV header; a deleted voice is
    VoiceNotFoundError, never the default voice."""
    fake, url = chatterbox
    provider, store = make(url, http_client, rng)

    voice = await enrol(provider)

    name = selfhosted_voice_name(KEY)
    assert await provider.mode() == "chatterbox"
    assert (voice.voice_id, voice.enrolment_key, voice.language, voice.metadata["mode"]) == (
        name,
        KEY,
        "de",
        "chatterbox",
    )
    assert list(fake.voices) == [name]
    assert store.voices == {}
    assert fake.requests_to("POST", "/v1/audio/speech") == []  # no inline probe: chatterbox has a registry
    found = await provider.find(KEY)
    assert found is not None
    assert (found.voice_id, found.enrolment_key) == (name, KEY)
    assert await provider.find("another key") is None
    assert [v.voice_id for v in await provider.list()] == [name]
    assert (await enrol(provider)).voice_id == name  # the same key adopts its voice
    assert len(fake.requests_to("POST", "/v1/voices")) == 1
    expected = voice_pitch(wav_sample().data)
    assert abs(expected - DEFAULT_PITCH) > 50

    spoken = await provider.synthesize(voice, TEXT)

    assert (spoken.mime_type, spoken.sample_rate) == ("audio/wav", 24000)
    with wave.open(io.BytesIO(spoken.audio)) as reader:
        assert (reader.getsampwidth(), reader.getnchannels(), reader.getframerate()) == (2, 1, 24000)
        pcm = reader.readframes(reader.getnframes())
    assert len(pcm) == int(0.05 * len(TEXT) * 24000) * 2
    assert abs(pitch(pcm, 24000) - expected) < 2.0
    streamed = b"".join([chunk async for chunk in provider.stream(voice, TEXT)])
    assert not streamed.startswith(b"RIFF")
    assert len(streamed) == len(pcm)  # the 44-byte header is not played
    assert abs(pitch(streamed, STREAM_SAMPLE_RATE) - expected) < 2.0
    assert [s["voice"] for s in fake.speeches] == [name, name]

    await provider.delete(name)

    assert fake.voices == {}
    gone: list[Callable[[], Awaitable[object]]] = [
        lambda: provider.delete(name),
        lambda: provider.get(name),
        lambda: provider.synthesize(voice, "Still there?"),
        lambda: anext(provider.stream(voice, "Still there?")),
    ]
    for call in gone:
        with pytest.raises(VoiceNotFoundError):
            await call()
    assert len(fake.speeches) == 2  # nothing was spoken in the default voice


async def test_inline_mode_refuses_a_server_that_ignores_ref_audio(
    chatterbox: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    """chatterbox drops `ref_audio` and speaks its default voice with a 200: forced into inline mode, the
    adapter's probe (a reference that is no audio, answered with audio) refuses it with a permanent
    error, keeps that verdict for a while, and asks again after it."""
    fake, url = chatterbox
    clock = Clock()
    provider, store = make(url, http_client, rng, clock, SELFHOSTED_VOICE_REGISTRY="inline")

    with pytest.raises(PermanentProviderError) as refused:
        await enrol(provider)

    assert refused.value.provider_code == "reference_ignored"
    assert "another voice" in refused.value.safe_message
    assert store.voices == {}
    probe = fake.requests_to("POST", "/v1/audio/speech")[0].json()
    assert probe["ref_audio"].startswith("data:audio/wav;base64,")
    assert fake.speeches == [{"input": "Hello.", "voice": "default"}]

    kept = InlineVoice(
        voice_id="kept",
        enrolment_key="vg-old",
        name="Ada",
        language="en",
        ref_text=None,
        audio=wav_sample().data,
        mime_type="audio/wav",
    )
    await store.put(kept)
    voice = await provider.get("kept")
    with pytest.raises(PermanentProviderError, match="another voice"):
        await provider.synthesize(voice, TEXT)
    with pytest.raises(PermanentProviderError, match="another voice"):
        await anext(provider.stream(voice, TEXT))
    assert len(fake.speeches) == 1  # the verdict stands: neither was sent

    clock.now += INLINE_RECHECK_S + 1
    with pytest.raises(PermanentProviderError, match="another voice"):
        await provider.synthesize(voice, TEXT)
    assert len(fake.speeches) == 2  # asked again, refused again; never the real request


@pytest.mark.parametrize("registry", ["auto", "inline"])
async def test_inline_probe_proves_the_server_reads_ref_audio_once(
    registry: str, http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    """A server that reads `ref_audio` refuses the probe's reference (400) and is not probed again by
    this adapter; `auto` looks for both registries first."""
    fake = SelfhostedFake("inline")
    with serve(fake) as url:
        provider, store = make(url, http_client, rng, SELFHOSTED_VOICE_REGISTRY=registry)

        voice = await enrol(provider)
        await provider.synthesize(voice, TEXT)
        await provider.synthesize(voice, TEXT)

    expected = [] if registry == "inline" else [("GET", "/v1/audio/voices"), ("GET", "/v1/voices")]
    expected += [("POST", "/v1/audio/speech")] * 3
    assert [(r.method, r.path) for r in fake.requests] == expected
    probe, *spoken = [r.json() for r in fake.requests_to("POST", "/v1/audio/speech")]
    assert set(probe) == set(spoken[0]) == {"input", "response_format", "model", "ref_audio", "ref_text"}
    assert probe["ref_audio"] != spoken[0]["ref_audio"]
    assert [s["voice"] for s in fake.speeches] == ["inline", "inline"]  # the probe spoke nothing
    assert list(store.voices) == [voice.voice_id]


class _WavAnyway(SelfhostedFake):
    """An OpenAI-shaped registry server that answers `pcm` with a whole WAV (a `LIST` chunk after its
    samples), sent 7 bytes at a time so the header arrives in pieces."""

    def __init__(self, rate: int) -> None:
        super().__init__("registry")
        self.rate = rate
        self.stream_interval_s = 0.0

    async def _speech(self, request: RecordedRequest, params: dict[str, str]) -> Response | Streamed:
        self.pcm = tone_pcm(0.5, self.rate, 330.0)
        trailer = b"LIST" + (12).to_bytes(4, "little") + b"INFOISFTLavf"
        wav = pcm16_to_wav(self.pcm, self.rate) + trailer
        return Streamed(200, chunked(wav, 7), [("content-type", "audio/wav")])


@pytest.mark.parametrize("rate", [24000, 48000])
async def test_a_wav_answer_to_a_pcm_stream_is_never_played_as_pcm(
    rate: int, http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    """Its header is read and stripped, its samples pass up to the size the header declares; a WAV at
    another rate than the stream's is refused before any audio."""
    fake = _WavAnyway(rate)
    fake.voices["v1"] = SelfhostedVoice("v1", "consent-1", wav_sample().data, "audio/wav", None)
    with serve(fake) as url:
        provider, _ = make(url, http_client, rng, SELFHOSTED_VOICE_REGISTRY="registry")
        voice = await provider.get("v1")
        if rate == STREAM_SAMPLE_RATE:
            streamed = b"".join([chunk async for chunk in provider.stream(voice, TEXT)])
            assert streamed == fake.pcm
        else:
            with pytest.raises(PermanentProviderError, match="cannot play") as refused:
                await anext(provider.stream(voice, TEXT))  # refused before its first chunk
            assert "48000 Hz" in (refused.value.operator_detail or "")
