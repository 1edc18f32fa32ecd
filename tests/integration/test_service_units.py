"""Service work that costs as few statements as it can (issue 15), still as `service_role` and held to its
limits: a worker's service pool acts as the service from the moment a connection opens, and a
`service_statement` is one statement committed as the server answers it, whose role never outlives it, and a
`service_pipeline` is statements sent in one pipeline, committed together at its end or not at all; a
`user_statement` is a caller's one read under RLS, in one round trip.
On PostgreSQL 18 and on 15 (Supabase's), as both run a pipeline without BEGIN as one implicit transaction."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, LiteralString

import psycopg
import pytest

from backend.db import units
from backend.db.connection import Connection, PooledConnection
from backend.db.execute import fetch_one
from backend.db.pool import Pool, create_pool, create_worker_pool, read_json
from backend.db.units import Database
from backend.errors import DatabaseUnavailable, NotFound, ServerBusy, StaleVersion
from backend.settings import Settings
from devkit.db import create_user

SETTINGS = Settings(db_timeout=0.5, db_pool_min=1, db_pool_max=2, queue_visibility_seconds=3)
WHO = (
    "select current_user as role, current_setting('statement_timeout') as statement,"
    " current_setting('idle_in_transaction_session_timeout') as idle,"
    " current_setting('request.jwt.claims', true) as claims"
)
AS_SERVICE = {"role": "service_role", "statement": "500ms", "idle": "2500ms"}


@asynccontextmanager
async def opened(pool: Pool) -> AsyncIterator[Database]:
    await pool.open(wait=True)
    try:
        yield Database(pool)
    finally:
        await pool.close()


@pytest.fixture
async def plain(any_db_dsn: str) -> AsyncIterator[Database]:
    async with opened(create_pool(any_db_dsn, SETTINGS.pool_limits)) as database:
        yield database


@pytest.fixture
async def worker(any_db_dsn: str) -> AsyncIterator[Database]:
    async with opened(
        create_worker_pool(any_db_dsn, SETTINGS.pool_limits, patience=SETTINGS.queue_visibility_seconds)
    ) as database:
        yield database


SEND = "select pgmq.send('voice_synthesis', '{\"n\": 1}'::jsonb) as msg_id"


def queued(dsn: str, msg_ids: list[int]) -> int:
    """How many of these messages another session sees."""
    with psycopg.connect(dsn, autocommit=True) as other:
        row = other.execute("select count(*) from pgmq.q_voice_synthesis where msg_id = any(%s)", (msg_ids,))
        return int(row.fetchone()[0])  # type: ignore[index]


async def who(conn: Connection) -> dict[str, Any]:
    row = await fetch_one(conn, WHO, {})
    return {k: v for k, v in row.items() if k != "claims" or v}


async def test_a_worker_pool_acts_as_the_service_at_its_limits_from_the_start(
    worker: Database, any_db_dsn: str
) -> None:
    assert worker.pool.service
    assert worker.pool.timeout == SETTINGS.queue_visibility_seconds  # waiting for a connection is not failing
    async with worker.work() as conn:  # no unit's settings at all
        assert await who(conn) == AS_SERVICE
    async with worker.service_transaction() as conn:
        assert await who(conn) == AS_SERVICE
    async with worker.service_transaction(budget=2.5) as conn:
        assert await who(conn) == {"role": "service_role", "statement": "2500ms", "idle": "12500ms"}
    async with worker.service_statement() as conn:
        assert await who(conn) == AS_SERVICE
    # A user's transaction on it is the user's, and leaves the session as the service it found.
    with psycopg.connect(any_db_dsn, autocommit=True) as admin:
        user = create_user(admin)
    async with worker.user_transaction({"sub": str(user), "role": "authenticated"}) as conn:
        mine = await who(conn)
    assert (mine["role"], mine["statement"]) == ("authenticated", "500ms")
    assert str(user) in mine["claims"]
    async with worker.work() as conn:
        assert await who(conn) == AS_SERVICE


async def test_units_of_work_write_nothing_on_the_connection_classes(worker: Database) -> None:
    # Assigning a class attribute invalidates the interpreter's attribute caches of the class: one written
    # with every answer (the time of the last one, until 2026-11-25) made every lookup on every connection
    # miss them, psycopg's own on each statement included.
    classes = [cls for cls in PooledConnection.__mro__ if cls is not object]
    before = [dict(vars(cls)) for cls in classes]
    async with worker.service_statement() as conn:
        await fetch_one(conn, "select 1 as one", {})
    async with worker.service_transaction(budget=2.5) as conn:
        await fetch_one(conn, "select 1 as one", {})
    async with worker.service_pipeline() as conn:
        await conn.execute("select 1")
    assert [dict(vars(cls)) for cls in classes] == before


JSON_VALUES = (
    'select \'{"a": [1, 2.5, null, true], "é": "x", "n": 123456789012345678901234567890}\'::jsonb as doc,'
    ' \'[{"b": 1, "a": 2}]\'::json as list, \'{"huge": 1.5e400}\'::json as huge'
)


async def test_every_pool_reads_json_with_msgspec_as_the_standard_library_would(
    plain: Database, worker: Database
) -> None:
    for database in (plain, worker):
        async with database.work() as conn:
            for name in ("json", "jsonb"):
                info = conn.adapters.types[name]
                loader = conn.adapters.get_loader(info.oid, psycopg.pq.Format.TEXT)
                assert loader is not None
                assert loader._loads is read_json  # type: ignore[attr-defined]
            row = await fetch_one(conn, JSON_VALUES, {})
        assert row["doc"] == {"a": [1, 2.5, None, True], "é": "x", "n": 123456789012345678901234567890}
        assert row["list"] == [{"b": 1, "a": 2}]
        # Beyond a float's range, which msgspec refuses (`json` keeps the text, where `jsonb` would write out
        # the digits): read as the standard library reads it.
        assert row["huge"] == {"huge": math.inf}


@pytest.mark.parametrize("budget", [None, 2.5])
async def test_a_service_statement_on_a_plain_pool_is_the_service_and_leaves_nothing_behind(
    plain: Database, budget: float | None
) -> None:
    async with plain.work() as conn:
        login = (await who(conn))["role"]
    assert login != "service_role"
    async with plain.service_statement(budget=budget) as conn:
        got = await who(conn)
    limit = 0.5 if budget is None else budget
    assert got == {"role": "service_role", "statement": f"{limit * 1000:.0f}ms", "idle": f"{limit * 5000:.0f}ms"}
    async with plain.work() as conn:  # its settings were its implicit transaction's only
        assert (await who(conn))["role"] == login
        assert (await who(conn))["statement"] != got["statement"]


@pytest.mark.parametrize("kind", ["plain", "worker"])
async def test_a_service_statement_commits_as_it_answers_and_takes_one_statement_only(
    kind: str, plain: Database, worker: Database, any_db_dsn: str
) -> None:
    database = plain if kind == "plain" else worker
    async with database.service_statement() as conn:
        row = await fetch_one(conn, SEND, {})
        # Committed already: another session sees the message before the unit ends.
        assert queued(any_db_dsn, [row["msg_id"]]) == 1
        with pytest.raises(RuntimeError, match="one statement"):
            await conn.execute("select 1")
        with pytest.raises(RuntimeError, match="one statement"):
            async with conn.transaction():
                pass
    # The connection's next unit is not held to one statement.
    async with database.service_transaction() as conn:
        await conn.execute("select 1")
        await conn.execute("select 2")


async def test_a_failing_service_statement_raises_its_domain_error_and_the_pool_goes_on(worker: Database) -> None:
    with pytest.raises(NotFound):
        async with worker.service_statement() as conn:
            await conn.execute("select voicegate.complete_attempt(gen_random_uuid(), 'worker:w', 'w', '{}'::jsonb)")
    async with worker.service_statement() as conn:
        assert await who(conn) == AS_SERVICE


@pytest.mark.parametrize("kind", ["plain", "worker"])
async def test_a_service_pipeline_is_the_service_and_commits_together_at_its_end(
    kind: str, plain: Database, worker: Database, any_db_dsn: str
) -> None:
    database = plain if kind == "plain" else worker
    async with database.service_pipeline() as conn:
        sent = [(await fetch_one(conn, SEND, {}))["msg_id"] for _ in range(2)]
        assert await who(conn) == AS_SERVICE
        assert queued(any_db_dsn, sent) == 0  # answered, and not committed before the pipeline's end
    assert queued(any_db_dsn, sent) == 2
    async with database.work() as conn:  # its settings were its implicit transaction's only
        assert ((await who(conn))["role"] == "service_role") == (kind == "worker")


async def test_a_failing_statement_in_a_service_pipeline_rolls_back_the_others(
    worker: Database, any_db_dsn: str
) -> None:
    sent: list[int] = []
    with pytest.raises(NotFound):  # noqa: PT012 - the failure may surface at its fetch or at the pipeline's end
        async with worker.service_pipeline() as conn:
            sent.append((await fetch_one(conn, SEND, {}))["msg_id"])
            await conn.execute("select voicegate.complete_attempt(gen_random_uuid(), 'worker:w', 'w', '{}'::jsonb)")
            await conn.execute(SEND)
    assert len(sent) == 1
    assert queued(any_db_dsn, sent) == 0
    async with worker.service_pipeline() as conn:
        assert await who(conn) == AS_SERVICE


async def test_a_service_pipeline_whose_block_raises_commits_nothing(plain: Database, any_db_dsn: str) -> None:
    sent: list[int] = []
    with pytest.raises(ZeroDivisionError):  # noqa: PT012 - the block's own error, after its statements
        async with plain.service_pipeline() as conn:
            sent.append((await fetch_one(conn, SEND, {}))["msg_id"])
            _ = 1 / 0
    assert queued(any_db_dsn, sent) == 0
    async with plain.service_pipeline() as conn:
        assert await who(conn) == AS_SERVICE


@pytest.mark.parametrize("kind", ["plain", "worker"])
async def test_a_user_statement_is_a_read_by_the_caller_under_rls(
    kind: str, plain: Database, worker: Database, any_db_dsn: str
) -> None:
    database = plain if kind == "plain" else worker
    with psycopg.connect(any_db_dsn, autocommit=True) as admin:
        user, other = create_user(admin), create_user(admin)
        theirs = admin.execute(
            "insert into public.reflections (owner_id, name) values (%s, 'theirs') returning id", (other,)
        ).fetchone()
    claims = {"sub": str(user), "role": "authenticated"}
    async with database.work() as conn:
        found = await who(conn)
    async with database.user_statement(claims) as conn:
        row = await fetch_one(
            conn,
            WHO + ", (select count(*) from public.reflections where id = %(id)s) as seen",
            {"id": theirs[0] if theirs else None},
        )
        with pytest.raises(RuntimeError, match="one statement"):
            await conn.execute("select 1")
    assert (row["role"], row["statement"], row["seen"]) == ("authenticated", "500ms", 0)  # RLS hid theirs
    assert str(user) in row["claims"]
    async with database.work() as conn:  # its role and claims were its implicit transaction's only
        assert await who(conn) == found
    # A read only: committed as the server answers, a write could be committed after its caller was told 503.
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        async with database.user_statement(claims) as conn:
            await conn.execute("insert into public.reflections (name) values ('mine')")
    with psycopg.connect(any_db_dsn, autocommit=True) as admin:
        assert admin.execute("select count(*) from public.reflections where owner_id = %s", (user,)).fetchone() == (0,)


#: A message sent for each item, with who sent it; an item with `fail` is refused (NotFound) instead.
SEND_EACH = (
    "select i.n, pgmq.send('voice_synthesis', '{\"n\": 1}'::jsonb) as msg_id, pg_backend_pid() as pid,"
    " pg_current_xact_id()::text as xact"
    " from jsonb_to_recordset(%(items)s::jsonb) as i(n int, fail bool)"
    " where not i.fail or voicegate.complete_attempt(gen_random_uuid(), 'worker:w', 'w', '{}'::jsonb) is null"
)


async def send_each(database: Database, *, fail: bool = False) -> dict[str, Any]:
    [[row]] = await database.grouped((SEND_EACH,), {"fail": fail})
    return row


@pytest.mark.parametrize("kind", ["plain", "worker"])
async def test_statements_grouped_in_one_turn_go_in_one_unit_and_commit_together(
    kind: str, plain: Database, worker: Database, any_db_dsn: str
) -> None:
    database = plain if kind == "plain" else worker
    # Four callers in one turn, on a pool of two connections: one statement, one implicit transaction.
    rows = await asyncio.gather(*(send_each(database) for _ in range(4)))
    assert len({(row["pid"], row["xact"]) for row in rows}) == 1
    assert len({row["msg_id"] for row in rows}) == 4  # each caller its own row
    assert queued(any_db_dsn, [row["msg_id"] for row in rows]) == 4
    # A caller alone goes alone; the next turn's callers make a group of their own.
    alone = await send_each(database)
    later = await asyncio.gather(*(send_each(database) for _ in range(2)))
    assert len({alone["xact"], rows[0]["xact"], later[0]["xact"]}) == 3
    assert later[0]["xact"] == later[1]["xact"]
    async with database.work() as conn:  # the group's role was its implicit transaction's only
        assert ((await who(conn))["role"] == "service_role") == (kind == "worker")


async def test_a_group_one_of_whose_items_is_refused_sends_each_again_alone(worker: Database, any_db_dsn: str) -> None:
    with psycopg.connect(any_db_dsn, autocommit=True) as other:
        before = other.execute("select count(*) from pgmq.q_voice_synthesis").fetchone()
    first, failed, last = await asyncio.gather(
        send_each(worker), send_each(worker, fail=True), send_each(worker), return_exceptions=True
    )
    assert isinstance(failed, NotFound)  # the item that failed the group meets its own error
    assert isinstance(first, dict)
    assert isinstance(last, dict)
    assert first["xact"] != last["xact"]  # each sent again alone
    with psycopg.connect(any_db_dsn, autocommit=True) as other:
        after = other.execute("select count(*) from pgmq.q_voice_synthesis").fetchone()
    # The failed group's sends were rolled back with it: two messages, not four.
    assert before is not None
    assert after == (before[0] + 2,)


@pytest.mark.parametrize("error", [DatabaseUnavailable, ServerBusy, StaleVersion])
async def test_a_group_that_fails_is_sent_again_alone_unless_the_database_is_out(
    worker: Database, error: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    run_group = units._run_group

    async def failing(conn: Connection, queries: tuple[LiteralString, ...], items: Sequence[Any]) -> Any:
        sent.append(len(items))
        if len(items) > 1:
            raise error
        return await run_group(conn, queries, items)

    monkeypatch.setattr(units, "_run_group", failing)
    got = await asyncio.gather(*(send_each(worker) for _ in range(3)), return_exceptions=True)
    if error is StaleVersion:  # one item's refusal: nothing committed, each tries alone
        assert [type(one) for one in got] == [dict] * 3
        assert sent == [3, 1, 1, 1]
    else:  # an outage is every member's, as it would have been alone: none sends again
        assert [type(one) for one in got] == [error] * 3
        assert len({id(one) for one in got}) == 3  # each its own error, raised in its own task
        assert sent == [3]


async def test_the_pool_hands_out_the_connection_given_back_last(any_db_dsn: str) -> None:
    async with opened(create_pool(any_db_dsn, Settings(db_pool_min=3, db_pool_max=3).pool_limits)) as database:
        pool = database.pool
        taken = [await pool.getconn() for _ in range(3)]
        for conn in taken:
            await pool.putconn(conn)
        # Given back first to last: taken last to first, so a process that needs one keeps using one.
        again = [await pool.getconn() for _ in range(3)]
        assert again == taken[::-1]
        for conn in again[:2]:
            await pool.putconn(conn)
        assert await pool.getconn() is again[1]
