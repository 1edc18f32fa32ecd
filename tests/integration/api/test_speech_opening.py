"""What a speech stream's opening costs the database before its provider is asked for audio: each answer the
units of work wait for (a statement alone, or a pipeline's end: one round trip each) counted on the request's
task, so that a round trip added to the first byte's path fails here instead of slowing every stream start
unseen. And what an opening costs the streams already flowing: their marks wait for its first bytes, and the
audio they then send is marked all the same."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.db.connection import PooledConnection
from backend.speech import service
from backend.speech.openings import Openings
from backend.speech.types import VoiceSpeechRequest
from backend.watermark import detect
from backend.watermark.stream import StreamMarker
from devkit.db import Conn
from tests.integration.api.conftest import User
from tests.integration.api.test_usage_api import app_with, english_voice
from tests.integration.test_likeness import claims_of

#: How long the marks test waits at most for what must happen: only a broken hold ever waits this long.
BOUND_S = 60.0
#: Spoken in 2 s or more: long enough for the mark to be found.
LONG_TEXT = "Please confirm your appointment for Tuesday at noon, and bring the forms with you."

#: The opening's round trips: the caller's voice read under RLS, then the switch to the service, the reservation
#: of the first sentence, the stream's row and the COMMIT, in one.
VOICE_ROUTE_ROUND_TRIPS = 2


async def test_a_stream_opens_in_its_few_round_trips_before_the_provider_is_asked(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: Counter[asyncio.Task[Any] | None] = Counter()
    before_audio: list[int] = []
    counted = PooledConnection._heard
    start = service._start

    def heard(self: PooledConnection, sent: float) -> None:
        answers[asyncio.current_task()] += 1
        counted(self, sent)

    async def started(*args: Any, **kwargs: Any) -> service.SpeechStream:
        before_audio.append(answers[asyncio.current_task()])
        return await start(*args, **kwargs)

    monkeypatch.setattr(PooledConnection, "_heard", heard)
    monkeypatch.setattr(service, "_start", started)
    alice = make_user()
    async with app_with(db_dsn, tmp_path) as client:
        voice = english_voice(sql, alice.id)
        for _ in range(2):  # the first on a pool that may still be opening its connections
            streamed = await client.post(
                "/api/v1/speech",
                json={"voiceId": voice, "text": "Hello there.", "format": "pcm_24000"},
                headers=alice.headers,
            )
            assert streamed.status_code == 200, streamed.text
    assert before_audio == [VOICE_ROUTE_ROUND_TRIPS] * 2


async def test_a_streams_marks_wait_for_another_streams_first_bytes_and_its_audio_is_marked(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks: list[int] = []
    mark, settled = StreamMarker.mark, Openings.settled
    holding = asyncio.Event()

    def marking(self: StreamMarker, taken: Any) -> bytes:
        marks.append(len(taken[0]))
        return mark(self, taken)

    async def observed(self: Openings, limit_s: float | None = None) -> None:
        if self.count:
            holding.set()
        # A hold no test waits out: only the other stream's first bytes may let the marks go.
        await settled(self, BOUND_S * 2 if self.count else limit_s)

    monkeypatch.setattr(StreamMarker, "mark", marking)
    monkeypatch.setattr(Openings, "settled", observed)
    alice = make_user()
    async with app_with(db_dsn, tmp_path) as client:
        speech: service.SpeechService = client.app.state.speech
        voice = uuid.UUID(english_voice(sql, alice.id))
        other = speech.openings.begin()
        stream = await speech.voice_speech(
            claims_of(alice.id), VoiceSpeechRequest(voice_id=voice, text=LONG_TEXT), ended=lambda: None
        )

        async def rest() -> bytes:
            return b"".join([chunk async for chunk in stream])

        # The first bytes leave while the other stream is still opening, before any mark is made.
        first = await anext(stream)
        assert first
        assert marks == []
        following = asyncio.create_task(rest())
        await asyncio.wait_for(holding.wait(), BOUND_S)
        assert marks == []
        assert not following.done()

        other.end()
        audio = first + await asyncio.wait_for(following, BOUND_S)
        await stream.finish()

    assert marks
    samples = np.frombuffer(audio, dtype="<i2") / 32768.0
    assert samples.size >= 2 * 24000
    assert detect(samples, 24000).present
