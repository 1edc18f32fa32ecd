"""One user's requests hold at most their share of an API process's database connections (`backend.db.shares`):
while a burst of theirs waits in the database for a lock of their own, the rest of the burst waits in a line of its
own, and another user's request gets a connection at once.

Before, the pool handed its connections out first come first served: with VOICEGATE_DB_POOL_MAX at 4, the first four
of a user's eight creates took all four connections and waited on their create bucket's row (up to its 0.8 s lock
timeout), and another user's read waited behind the other four for one of them to give up.

A request past the user's requests in flight (VOICEGATE_USER_CONCURRENCY) is refused after a pause, so that a client
asking back at once cannot take its refusals as fast as the process can make them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psycopg

from backend.app import create_app
from backend.settings import settings_from_env
from backend.usage.job_admission import PAUSE_S
from devkit.db import Conn, one
from fakes import serve
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.integration.api.conftest import JWT_SECRET, User

POOL = 4
SHARE = POOL // 2
BURST = 8


@asynccontextmanager
async def served(db_dsn: str, tmp_path: Path, **env: str) -> AsyncIterator[httpx.AsyncClient]:
    """An API process served on a real port from a thread of its own (a test client would run each request in
    turn), and a client of it."""
    settings = settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path), **env})
    app = create_app(with_auth_keys(settings, {"SUPABASE_JWT_SECRET": JWT_SECRET}), db_dsn, embedded=EMBEDDED)
    with serve(app, lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield client


def waiting_on_locks(sql: Conn) -> int:
    """Backends waiting for a lock."""
    return int(one(sql, "select count(*) as n from pg_locks where not granted")["n"])


async def test_a_users_burst_waiting_on_their_own_lock_leaves_connections_for_another_user(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    flood, other = make_user(), make_user()
    sql.execute(
        "insert into voicegate.user_creates (owner_id, kind, tokens, counted_at) values (%s, 'reflection', 300, now())",
        (flood.id,),
    )
    async with served(db_dsn, tmp_path, VOICEGATE_DB_POOL_MAX=str(POOL)) as client:
        assert (await client.get("/api/v1/usage", headers=other.headers)).status_code == 200  # the pool is open
        answered: list[int] = []

        async def create() -> None:
            name = f"Reflection {uuid.uuid4().hex[:8]}"
            answer = await client.post("/v1/reflections", json={"name": name}, headers=flood.headers)
            answered.append(answer.status_code)

        with psycopg.connect(db_dsn) as holder:
            # The flood's create bucket, locked as a create of theirs in another process would hold it.
            holder.execute(
                "select 1 from voicegate.user_creates where owner_id = %s and kind = 'reflection' for update",
                (flood.id,),
            )
            burst = [asyncio.create_task(create()) for _ in range(BURST)]
            deadline = asyncio.get_running_loop().time() + 5
            while waiting_on_locks(sql) < SHARE:
                assert asyncio.get_running_loop().time() < deadline, "the flood's creates never reached their lock"
                await asyncio.sleep(0.01)
            most = waiting_on_locks(sql)

            read = await asyncio.wait_for(client.get("/api/v1/usage", headers=other.headers), 5)

            flood_answers_first = len(answered)
            most = max(most, waiting_on_locks(sql))
            holder.rollback()
        await asyncio.gather(*burst)

    assert read.status_code == 200, read.text
    # Answered while every one of the flood's creates was still waiting (each waits up to 0.8 s for the lock).
    assert flood_answers_first == 0
    assert most == SHARE  # the rest of the burst waited in its own line, holding no connection
    assert set(answered) <= {201, 429}


async def test_a_request_past_the_users_in_flight_limit_is_refused_after_a_pause(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    flood, other = make_user(), make_user()
    sql.execute(
        "insert into voicegate.user_creates (owner_id, kind, tokens, counted_at) values (%s, 'reflection', 300, now())",
        (flood.id,),
    )
    async with served(db_dsn, tmp_path, VOICEGATE_USER_CONCURRENCY="1") as client:
        with psycopg.connect(db_dsn) as holder:
            holder.execute(
                "select 1 from voicegate.user_creates where owner_id = %s and kind = 'reflection' for update",
                (flood.id,),
            )
            # The flood's one place in flight: a create waiting on its bucket's lock.
            held = asyncio.create_task(client.post("/v1/reflections", json={"name": "Held"}, headers=flood.headers))
            deadline = asyncio.get_running_loop().time() + 5
            while waiting_on_locks(sql) < 1:
                assert asyncio.get_running_loop().time() < deadline, "the flood's create never reached its lock"
                await asyncio.sleep(0.01)
            started = asyncio.get_running_loop().time()
            refused = await client.get("/api/v1/usage", headers=flood.headers)
            took = asyncio.get_running_loop().time() - started
            read = await client.get("/api/v1/usage", headers=other.headers)
            holder.rollback()
        await held

    assert (refused.status_code, refused.json()["code"]) == (429, "concurrency_limited"), refused.text
    assert took >= PAUSE_S  # a client asking back at once is answered no faster than this
    assert read.status_code == 200, read.text
