"""Uploads are admitted by the backlog of the queue that checks them (VOICEGATE_UPLOAD_BACKLOG_SECONDS): while the
queue holds more seconds of work than that, at the pace its consumers finished messages over the last 30 s (at
least one a second), an upload is a 503 `backlog_full` with Retry-After, before its body is read, writing
nothing; once the queue is worked off, uploads are taken again. On 360a82a 24 clients had 1,994 samples
accepted in 100 s while the checks ran at 1-2 a second: a backlog of minutes no client was told about."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.settings import settings_from_env
from devkit.audio_corpus import speech_wav
from devkit.db import Conn
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.integration.api.conftest import JWT_SECRET, User
from tests.integration.api.test_entry_check import Received, call
from tests.integration.api.test_nul_characters import rows

Client = AsyncTestClient  # type: ignore[type-arg]
#: Seconds of work the test's server takes on: with no pace measured, 3 messages (a message a second).
LIMIT_S = 3
SAMPLES = "voice_sample_process"
CLONES = "voice_clone_process"


@pytest.fixture
async def small(db_dsn: str, tmp_path: Path) -> AsyncIterator[Client]:
    """The app with VOICEGATE_UPLOAD_BACKLOG_SECONDS=3 and no consumers: what waits in a queue stays there."""
    env = {"VOICEGATE_DATA_DIR": str(tmp_path), "VOICEGATE_UPLOAD_BACKLOG_SECONDS": str(LIMIT_S)}
    settings = with_auth_keys(settings_from_env(env), {"SUPABASE_JWT_SECRET": JWT_SECRET})
    async with AsyncTestClient(app=create_app(settings, db_dsn, embedded=EMBEDDED)) as client:
        yield client


def waiting(sql: Conn, queue: str, n: int) -> list[int]:
    """`n` messages sent to `queue`, as uploads before them left them: their ids."""
    return [sql.execute("select pgmq.send(%s, '{}'::jsonb)", (queue,)).fetchone()[0] for _ in range(n)]  # type: ignore[index]


def archive(sql: Conn, queue: str, ids: list[int]) -> None:
    """Mark `ids` done, as a consumer does."""
    sql.execute("select pgmq.archive(%s, %s::bigint[])", (queue, ids))


async def upload(client: Client, user: User) -> Any:
    return await client.post(
        "/api/v1/voice-samples",
        data={"consent": "true"},
        files={"file": ("me.wav", speech_wav(4.0), "audio/wav")},
        headers=user.headers,
    )


async def admitted_within(client: Client, user: User, seconds: float) -> Any:
    """Upload until one is taken (the estimate is at most a second old), failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        answer = await upload(client, user)
        if answer.status_code != 503 or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.2)


async def test_an_upload_past_the_backlog_is_a_503_unread_and_writes_nothing(
    small: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    ids = waiting(sql, SAMPLES, LIMIT_S + 1)
    before = rows(sql)

    answers = await asyncio.gather(*(upload(small, user) for _ in range(8)))

    assert {(a.status_code, a.json()["code"]) for a in answers} == {(503, "backlog_full")}
    assert all(1 <= int(a.headers["retry-after"]) <= 60 for a in answers)
    assert "4 pieces of work are waiting" in answers[0].json()["detail"]
    assert rows(sql) == before
    headers = {"content-type": "multipart/form-data; boundary=x", "content-length": "5000000", **user.headers}
    status, answer_headers, _ = await call(small, "POST", "/api/v1/voice-samples", headers, Received(forbidden=True))
    assert (status, "retry-after" in answer_headers) == (503, True), "refused before a byte of the body is read"

    archive(sql, SAMPLES, ids[:2])

    taken = await admitted_within(small, user, 5)
    assert taken.status_code == 202, taken.text


async def test_the_pace_of_the_last_30_s_sets_how_much_is_taken(
    small: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    # 90 done in the window: 3 a second, so 3 s of work is 9 messages.
    archive(sql, SAMPLES, waiting(sql, SAMPLES, 90))
    held = waiting(sql, SAMPLES, 10)
    refused = await upload(small, user)
    assert (refused.status_code, refused.json()["code"]) == (503, "backlog_full"), refused.text

    archive(sql, SAMPLES, held[:2])

    assert (await admitted_within(small, user, 5)).status_code == 202


async def test_a_reflections_clone_upload_is_admitted_by_the_clone_queue(
    small: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    reflection = (await small.post("/v1/reflections", json={"name": "r"}, headers=user.headers)).json()["id"]
    waiting(sql, CLONES, LIMIT_S + 1)
    before = rows(sql)

    refused = await small.post(
        f"/v1/reflections/{reflection}/voice/clone",
        data={"consent": "true"},
        files={"file": ("me.wav", speech_wav(4.0), "audio/wav")},
        headers=user.headers,
    )

    assert (refused.status_code, refused.json()["code"]) == (503, "backlog_full"), refused.text
    assert rows(sql) == before
    assert (await upload(small, user)).status_code == 202, "the sample queue is another queue"


async def test_an_anonymous_upload_is_a_401_whatever_the_backlog(small: Client, sql: Conn) -> None:
    waiting(sql, SAMPLES, LIMIT_S + 1)

    answer = await small.post("/api/v1/voice-samples", data={"consent": "true"}, files={"file": ("a.wav", b"x")})

    assert answer.status_code == 401
