"""What a speech stream's opening costs the database before its provider is asked for audio: each answer the
units of work wait for (a statement alone, or a pipeline's end: one round trip each) counted on the request's
task, so that a round trip added to the first byte's path fails here instead of slowing every stream start
unseen."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql as sql_text

from backend.db.connection import PooledConnection
from backend.speech import service
from devkit.db import Conn, one
from tests.integration.api.conftest import User
from tests.integration.api.test_usage_api import app_with, english_voice

#: The opening's round trips: the caller's voice read under RLS, then the switch to the service, the reservation
#: of the first sentence, the stream's row and the COMMIT, in one.
VOICE_ROUTE_ROUND_TRIPS = 2


async def test_a_stream_opens_in_its_few_round_trips_before_the_provider_is_asked(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: Counter[asyncio.Task[Any] | None] = Counter()
    before_audio: list[int] = []
    counted = PooledConnection._heard
    start = service.SpeechService._start

    def heard(self: PooledConnection, sent: float) -> None:
        answers[asyncio.current_task()] += 1
        counted(self, sent)

    async def started(self: service.SpeechService, *args: Any, **kwargs: Any) -> service.SpeechStream:
        before_audio.append(answers[asyncio.current_task()])
        return await start(self, *args, **kwargs)

    monkeypatch.setattr(PooledConnection, "_heard", heard)
    monkeypatch.setattr(service.SpeechService, "_start", started)
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
            assert "voicegate-quota-cut" not in streamed.headers, "a text the quota takes whole says nothing of it"
    assert before_audio == [VOICE_ROUTE_ROUND_TRIPS] * 2


async def test_a_streams_opening_and_end_commit_without_waiting_for_the_wal_flush(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test servers never wait for a flush: this database does, as a deployment's does, for new sessions.
    sql.execute(
        sql_text.SQL("alter database {} set synchronous_commit = on").format(sql_text.Identifier(sql.info.dbname))
    )
    with psycopg.connect(db_dsn) as fresh:
        assert fresh.execute("select current_setting('synchronous_commit')").fetchone() == ("on",)
    seen: dict[str, str] = {}
    commit_with = PooledConnection.commit_with

    async def probed(self: PooledConnection, *statements: tuple[Any, Any]) -> list[list[dict[str, Any]]]:
        # What the transaction's COMMIT will do, read in the same pipeline just before it.
        answers = await commit_with(self, *statements, (_SYNCHRONOUS_COMMIT, {}))
        for unit, statement in (("opening", service._Q["open_stream"]), ("end", service._Q["finish_stream"])):
            if any(sent == statement for sent, _ in statements):
                seen[unit] = answers[-1][0]["setting"]
        return answers[:-1]

    monkeypatch.setattr(PooledConnection, "commit_with", probed)
    alice = make_user()
    async with app_with(db_dsn, tmp_path) as client:
        streamed = await client.post(
            "/api/v1/speech",
            json={"voiceId": english_voice(sql, alice.id), "text": "Hello there.", "format": "pcm_24000"},
            headers=alice.headers,
        )
        assert streamed.status_code == 200, streamed.text
    assert seen == {"opening": "off", "end": "off"}
    # The stream was recorded as any is: its row finished, its first sentence in the ledger.
    row = one(sql, "select outcome, characters from public.speech_streams where owner_id = %s", (alice.id,))
    assert row == {"outcome": "completed", "characters": len("Hello there.")}


async def test_a_streams_end_whose_write_is_cancelled_with_its_request_is_written_all_the_same(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client leaves as the stream's end is written (a provider that failed midway, then a disconnect): the
    request's cancellation interrupts the write, and the stream records only once, so the row said `streaming` for
    ever. The end is written once the request is gone (here by the app's close, which waits for such writes)."""
    cancelled: list[str] = []
    commit_with = PooledConnection.commit_with

    async def cancelled_at_the_end(self: PooledConnection, *statements: tuple[Any, Any]) -> list[list[dict[str, Any]]]:
        if not cancelled and any(sent == service._Q["finish_stream"] for sent, _ in statements):
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # the request's task, as the server cancels it when its client goes
            cancelled.append(task.get_name())
        return await commit_with(self, *statements)

    monkeypatch.setattr(PooledConnection, "commit_with", cancelled_at_the_end)
    alice = make_user()
    async with app_with(db_dsn, tmp_path) as client:
        # The test client runs the app on a loop of its own and hands back the request's end as its future's.
        with pytest.raises(concurrent.futures.CancelledError):
            await client.post(
                "/api/v1/speech",
                json={"voiceId": english_voice(sql, alice.id), "text": "Hello there.", "format": "pcm_24000"},
                headers=alice.headers,
            )
    assert len(cancelled) == 1
    row = one(sql, "select outcome, characters from public.speech_streams where owner_id = %s", (alice.id,))
    assert row == {"outcome": "completed", "characters": len("Hello there.")}


_SYNCHRONOUS_COMMIT = "select current_setting('synchronous_commit') as setting"
