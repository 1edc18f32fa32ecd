"""What the streaming-speech tests share besides the timed streaming request (`devkit.streaming`): decoding
what came back, how long the fakes' audio for a text is, and waiting for a reflection's voice to reach a state."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from typing import Any

import httpx
import soundfile

from backend.speech.service import SENTENCE_PAUSE_S
from backend.text import sentences
from tests.integration.api.conftest import User

RATE = 24000
THREE_SENTENCES = (
    "Hello there, this is the first sentence. Here is the second one, a bit longer than that. And a third."
)


def fake_samples(text: str) -> int:
    """The samples the fakes speak for `text` streamed sentence by sentence (0.05 s a character, at most 5 s
    a request), with the pause between sentences."""
    parts = sentences(text)
    spoken = sum(int(min(0.05 * len(part), 5.0) * RATE) for part in parts)
    return spoken + (len(parts) - 1) * round(SENTENCE_PAUSE_S * RATE)


def decoded_samples(body: bytes, fmt: str) -> int:
    """How many samples of audio a streamed body holds: counted for PCM, decoded by libsndfile otherwise."""
    if fmt == "pcm_24000":
        assert len(body) % 2 == 0
        return len(body) // 2
    with soundfile.SoundFile(io.BytesIO(body)) as audio:
        assert (audio.samplerate, audio.channels) == (RATE, 1)
        return len(audio.read(dtype="int16"))


async def until_state(
    client: httpx.AsyncClient, user: User, rid: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The reflection's voice state once `done` holds (at most 90 s; a failed clone fails at once)."""
    deadline = time.monotonic() + 90
    while True:
        state: dict[str, Any] = (await client.get(f"/v1/reflections/{rid}/voice", headers=user.headers)).json()
        if done(state):
            return state
        assert state["voice"]["cloneStatus"] != "failed", state["voice"]["lastError"]
        assert time.monotonic() < deadline, state
        await asyncio.sleep(0.1)
