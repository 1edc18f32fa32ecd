"""`stream` of each remote adapter (the clouds and a self-hosted server) against its fake, which streams
as the real API does: the exact request, PCM at 24 kHz of the expected length arriving in pieces before
the provider has finished, the provider request ended when the listener closes the stream, and errors
before and during the audio."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from backend.providers.base import ProviderVoice, VoiceProvider
from backend.providers.cartesia import CartesiaProvider
from backend.providers.elevenlabs import ElevenLabsProvider
from backend.providers.errors import PermanentProviderError, TransientProviderError
from backend.providers.qwen import QwenProvider
from backend.providers.selfhosted import SelfhostedProvider
from fakes import CartesiaFake, ElevenLabsFake, FakeProvider, Fault, QwenFake, SelfhostedFake, serve
from fakes.audio import tone_wav
from fakes.cartesia import CartesiaVoice
from fakes.elevenlabs import ElevenVoice
from fakes.qwen import QwenVoice
from fakes.selfhosted import MODEL as SELFHOSTED_MODEL
from fakes.selfhosted import SelfhostedVoice
from tests.provider_support import CARTESIA_KEY, ELEVEN_KEY, FAST_POLICY, QWEN_KEY, settings_for

TEXT = "The first move is what sets everything in motion."  # 49 characters: 2.45 s of fake audio
#: What the fakes speak for a text: 0.05 s a character, as 16-bit PCM at 24 kHz.
EXPECTED_BYTES = int(0.05 * len(TEXT) * 24000) * 2


@dataclass
class Served:
    name: str
    fake: FakeProvider
    provider: VoiceProvider
    voice: ProviderVoice
    path: str


@pytest.fixture(params=["elevenlabs", "cartesia", "qwen", "selfhosted"])
def served(request: pytest.FixtureRequest, http_client: httpx.AsyncClient) -> Iterator[Served]:
    """One fake with a voice already in it, and its adapter."""
    rng = random.Random(7)  # noqa: S311 - seeded jitter
    name: str = request.param
    fake: FakeProvider
    if name == "elevenlabs":
        fake = ElevenLabsFake(ELEVEN_KEY)
        fake.voices["v1"] = ElevenVoice("v1", "Ada", None, {}, [])
    elif name == "cartesia":
        fake = CartesiaFake(CARTESIA_KEY)
        fake.voices["v1"] = CartesiaVoice("v1", "Ada", None, "en")
    elif name == "qwen":
        fake = QwenFake(QWEN_KEY)
        fake.voices["v1"] = QwenVoice("v1", "qwen3-tts-vc-2026-01-22", "en", datetime.now(UTC), "")
    else:
        fake = SelfhostedFake("registry")
        fake.voices["v1"] = SelfhostedVoice("v1", "consent-1", tone_wav(3.0, 24000), "audio/wav", "Hello there.")
    with serve(fake) as url:
        provider: VoiceProvider
        if name == "elevenlabs":
            settings = settings_for(ELEVENLABS_API_KEY=ELEVEN_KEY, ELEVENLABS_BASE_URL=url)
            provider, path = (
                ElevenLabsProvider(settings.sections["elevenlabs"], http_client, policy=FAST_POLICY, rng=rng),
                "/v1/",
            )
        elif name == "cartesia":
            settings = settings_for(CARTESIA_API_KEY=CARTESIA_KEY, CARTESIA_BASE_URL=url)
            provider, path = (
                CartesiaProvider(settings.sections["cartesia"], http_client, policy=FAST_POLICY, rng=rng),
                "/tts/",
            )
        elif name == "qwen":
            settings = settings_for(DASHSCOPE_API_KEY=QWEN_KEY, DASHSCOPE_BASE_URL=url)
            provider, path = QwenProvider(settings.sections["qwen"], http_client, policy=FAST_POLICY, rng=rng), "/api/"
        else:
            settings = settings_for(SELFHOSTED_BASE_URL=url, SELFHOSTED_MODEL=SELFHOSTED_MODEL)
            provider = SelfhostedProvider(settings.sections["selfhosted"], http_client, policy=FAST_POLICY, rng=rng)
            path = "/v1/audio/speech"
        voice = ProviderVoice(
            provider=name, voice_id="v1", target_model="qwen3-tts-vc-2026-01-22" if name == "qwen" else None
        )
        yield Served(name, fake, provider, voice, path)


async def until(condition: object, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_each_adapter_asks_for_streamed_pcm_at_24_khz(served: Served) -> None:
    received = b"".join([chunk async for chunk in served.provider.stream(served.voice, TEXT)])
    assert len(received) == EXPECTED_BYTES
    request = served.fake.requests_to("POST", served.path)[-1]
    if served.name == "elevenlabs":
        assert request.path == "/v1/text-to-speech/v1/stream"
        assert request.query["output_format"] == ["pcm_24000"]
        assert request.json() == {"text": TEXT, "model_id": "eleven_multilingual_v2"}
    elif served.name == "cartesia":
        assert request.path == "/tts/bytes"
        assert request.json()["output_format"] == {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000}
    elif served.name == "selfhosted":
        assert request.json() == {
            "input": TEXT,
            "response_format": "pcm",
            "voice": "v1",
            "model": SELFHOSTED_MODEL,
            "stream_format": "audio",
            "stream": True,
        }
    else:
        assert request.headers["x-dashscope-sse"] == "enable"
        assert request.headers["accept"] == "text/event-stream"
        assert request.json() == {"model": "qwen3-tts-vc-2026-01-22", "input": {"text": TEXT, "voice": "v1"}}


async def test_audio_arrives_in_pieces_before_the_provider_has_finished(served: Served) -> None:
    served.fake.stream_interval_s = 0.02
    started = time.monotonic()
    arrivals: list[float] = []
    received = b""
    async for chunk in served.provider.stream(served.voice, TEXT):
        arrivals.append(time.monotonic() - started)
        received += chunk
    total = time.monotonic() - started
    assert len(received) == EXPECTED_BYTES
    assert len(arrivals) >= 10  # 25 chunks of 0.1 s were sent; the client may merge a few
    # The fake spends ~0.5 s sending 25 chunks 20 ms apart; the first is here after about one interval.
    assert arrivals[0] < total / 4, (arrivals[0], total)


async def test_closing_the_stream_cancels_the_provider_request(served: Served) -> None:
    served.fake.stream_interval_s = 0.05
    async with aclosing(served.provider.stream(served.voice, TEXT)) as chunks:
        first = await anext(chunks)
    assert first
    await until(lambda: served.fake.cancelled)
    assert served.fake.cancelled[0].path.startswith(served.path)
    assert served.fake.streamed == []  # the fake stopped sending


async def test_a_task_cancelled_while_waiting_for_audio_cancels_the_provider_request(served: Served) -> None:
    served.fake.stream_interval_s = 0.05

    async def listen() -> None:
        async for _ in served.provider.stream(served.voice, TEXT):
            await asyncio.sleep(10)  # a listener that stops listening

    task = asyncio.create_task(listen())
    await until(lambda: served.fake.requests_to("POST", served.path))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: served.fake.cancelled)


async def test_a_busy_provider_is_retried_before_the_audio_starts(served: Served) -> None:
    served.fake.faults.fail_next(Fault("status", 503, method="POST", path_prefix=served.path))
    received = b"".join([chunk async for chunk in served.provider.stream(served.voice, TEXT)])
    assert len(received) == EXPECTED_BYTES
    assert len(served.fake.requests_to("POST", served.path)) == 2


async def test_an_unknown_voice_is_a_permanent_error(served: Served) -> None:
    gone = ProviderVoice(provider=served.name, voice_id="nope", target_model=served.voice.target_model)
    with pytest.raises(PermanentProviderError):
        _ = [chunk async for chunk in served.provider.stream(gone, TEXT)]


async def test_a_dashscope_error_event_midway_is_a_transient_error(http_client: httpx.AsyncClient) -> None:
    fake = QwenFake(QWEN_KEY)
    fake.voices["v1"] = QwenVoice("v1", "qwen3-tts-vc-2026-01-22", "en", datetime.now(UTC), "")
    fake.sse_error_after = 3
    with serve(fake) as url:
        provider = QwenProvider(
            settings_for(DASHSCOPE_API_KEY=QWEN_KEY, DASHSCOPE_BASE_URL=url).sections["qwen"], http_client
        )
        voice = ProviderVoice(provider="qwen", voice_id="v1", target_model="qwen3-tts-vc-2026-01-22")
        received: list[bytes] = []

        async def listen() -> None:
            async for chunk in provider.stream(voice, TEXT):
                received.append(chunk)

        with pytest.raises(TransientProviderError) as raised:
            await listen()
    assert len(received) == 3
    assert (raised.value.provider_code, raised.value.http_status) == ("InternalError", 500)
