"""`VoicegateTTSService` hands on each chunk of the speech route's answer as it arrives: its first audio frame
does not wait for Pipecat's `chunk_size` (0.5 s of audio) to come, which the first byte Pipecat reports would
otherwise include."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from pipecat.frames.frames import Frame, TTSAudioRawFrame

from backend.conversation.pipecat_tts import VoicegateTTSService

#: Only a service that held its first frame back waits this long.
BOUND_S = 10.0
#: 0.1 s of 24 kHz 16-bit PCM: what a provider's first chunk may be.
FIRST = b"\x01\x00" * 2400


async def test_the_first_chunk_is_a_frame_before_the_rest_of_the_audio_has_come() -> None:
    handed_on = asyncio.Event()

    async def answer() -> AsyncIterator[bytes]:
        yield FIRST
        # The rest is made only once the first chunk has reached the pipeline, as a slow provider's would be.
        await asyncio.wait_for(handed_on.wait(), BOUND_S)
        yield b"\x02\x00" * 24000

    def route(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/reflections/r1/speech"
        return httpx.Response(200, headers={"voicegate-attempt-id": "a1"}, content=answer())

    tts = VoicegateTTSService(api_url="http://voicegate.test", access_token="token", reflection_id="r1")
    # What `start` sets up once it has read the reflection's voice (attempt a1), without a pipeline around it.
    tts._client = httpx.AsyncClient(base_url="http://voicegate.test", transport=httpx.MockTransport(route))
    tts._attempt_id = "a1"
    tts._sample_rate = 24000
    frames: list[Frame | None] = []
    async for frame in tts.run_tts("Hello there.", "c1"):
        frames.append(frame)
        handed_on.set()
    await tts._client.aclose()

    audio = [frame.audio for frame in frames if isinstance(frame, TTSAudioRawFrame)]
    assert audio[0] == FIRST
    assert b"".join(audio) == FIRST + b"\x02\x00" * 24000
