"""No error in one unit of work leaves its pooled connection failing the next unit, whoever that serves (issue 77).

A unit sends statements in pipelines: a transaction's opening (`BEGIN`, the caller's role and claims, the account
check) with its first statement, a `service_pipeline`'s statements, a transaction's last statements with its
`COMMIT` (`commit_with`, `close_with`). When one of them fails, the server skips the rest of the pipeline. psycopg
prepares a statement the sixth time it runs and, in a pipeline, records it as prepared when it queues the `Parse`:
one queued behind a failure was never prepared, and every later unit on the connection that ran it met `prepared
statement "_pg3_N" does not exist` (a removed user's flood made 281 of another user's 334 requests answer 500).

Each case here, on a pool of one connection, has another caller's unit and a unit failing the same way take turns
at the statement queued behind the failure, so that psycopg prepares it in the failing unit; the other caller's
units must go on answering. Every kind of error a
statement meets: the removed user's account check, a lifecycle SQLSTATE raised by a function (an owner check), a
CHECK constraint, row-level security, and a statement cancelled (as `statement_timeout` and `pg_cancel_backend` both
cancel one: SQLSTATE 57014)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, LiteralString

import psycopg
import pytest

from backend.db.connection import Connection
from backend.db.execute import fetch_all
from backend.db.pool import create_pool
from backend.db.units import BECOME_SERVICE, Database, commit_with
from backend.errors import DatabaseUnavailable, NotFound, Unauthorized
from backend.settings import Settings
from devkit.db import create_user

#: One connection, so that every unit runs on the one the failures left.
SETTINGS = Settings(db_timeout=5.0, db_pool_min=1, db_pool_max=1)
#: The run of a statement on which psycopg prepares it (its `prepare_threshold`, 5, runs before).
PREPARED_ON = 6
#: Turns of the other caller and the failing unit: the statement's `PREPARED_ON`th run is the failing unit's.
ROUNDS = PREPARED_ON // 2 + 1

_FIXTURE = """
create table public.test_checked (n integer not null check (n > 0));
grant insert, select on public.test_checked to authenticated, service_role;
create function public.test_owner_check() returns void language plpgsql as $$
begin
  raise exception using errcode = 'VG404', message = 'Not yours.';
end $$;
grant execute on function public.test_owner_check() to authenticated, service_role;
"""

# What runs behind the failure in the failing unit, and alone in the other caller's: each case its own text, so
# that each counts its own runs towards being prepared.
_AFTER: dict[str, LiteralString] = {
    "account": "select count(*) as n from public.reflections where name <> 'account'",
    "raised": "select count(*) as n from public.reflections where name <> 'raised'",
    "check": "select count(*) as n from public.test_checked where n <> -1",
    "rls": "select count(*) as n from public.reflections where name <> 'rls'",
    "cancel": "select count(*) as n from public.test_checked where n <> -2",
}


class Case:
    """Two callers on one connection: `gone` (a user whose row is deleted) and `live`."""

    def __init__(self, db: Database, live: uuid.UUID, dsn: str) -> None:
        self.db = db
        self.live = live
        self.gone = uuid.uuid4()
        self.dsn = dsn

    def claims(self, user: uuid.UUID) -> dict[str, Any]:
        return {"sub": str(user), "aud": "authenticated", "role": "authenticated"}


@pytest.fixture
async def case(db_dsn: str) -> AsyncIterator[Case]:
    with psycopg.connect(db_dsn, autocommit=True) as sql:
        sql.execute(_FIXTURE)
        live = create_user(sql)
    pool = create_pool(db_dsn, SETTINGS.pool_limits)
    await pool.open(wait=True)
    try:
        yield Case(Database(pool), live, db_dsn)
    finally:
        await pool.close()


async def _cancelled_when_running(case: Case, unit: Awaitable[None]) -> None:
    """Run `unit`, cancelling its statement from another session once the server runs it (57014)."""
    task = asyncio.ensure_future(unit)
    with psycopg.connect(case.dsn, autocommit=True) as other:
        for _ in range(500):
            row = other.execute(
                "select pid from pg_stat_activity where state = 'active' and query like %s",
                ("%pg_sleep(30)%",),
            ).fetchone()
            if row is not None:
                other.execute("select pg_cancel_backend(%s)", (row[0],))
                break
            await asyncio.sleep(0.01)
        else:
            task.cancel()
            raise AssertionError("the statement never ran")
    with pytest.raises(DatabaseUnavailable) as raised:
        await task
    assert isinstance(raised.value.__cause__, psycopg.errors.QueryCanceled)


async def _user_rows(conn: Connection, query: LiteralString) -> int:
    [row] = await fetch_all(conn, query, {})
    return int(row["n"])


# Each failing unit: the failure, then the statement queued behind it in the same pipeline.


async def _opening_of_a_removed_user(case: Case) -> None:
    async with case.db.user_transaction(case.claims(case.gone)) as conn:
        await _user_rows(conn, _AFTER["account"])


async def _a_removed_users_read(case: Case) -> None:
    async with case.db.user_statement(case.claims(case.gone)) as conn:
        await _user_rows(conn, _AFTER["account"])


async def _raised_in_a_pipeline(case: Case) -> None:
    async with case.db.service_pipeline() as conn:
        await conn.execute("select public.test_owner_check()")
        await conn.execute(_AFTER["raised"])


async def _check_violated_before_commit(case: Case) -> None:
    async with case.db.user_transaction(case.claims(case.live)) as conn:
        await commit_with(conn, ("insert into public.test_checked (n) values (0)", {}), (_AFTER["check"], {}))


async def _rls_refused_with_commit(case: Case) -> None:
    """A failure sent with the COMMIT leaves the transaction open: the connection is discarded, not reused."""
    other = {"other": uuid.uuid4()}
    async with case.db.user_transaction(case.claims(case.live)) as conn:
        await conn.execute("select 1")
        conn.close_with("insert into public.reflections (owner_id, name) values (%(other)s, 'x')", other)
        conn.close_with(_AFTER["rls"], {})


async def _cancelled_before_commit(case: Case) -> None:
    """Raises (and checks) its own error, where it is cancelled."""

    async def unit() -> None:
        async with case.db.user_transaction(case.claims(case.live)) as conn:
            await commit_with(conn, ("select pg_sleep(30)", {}), (_AFTER["cancel"], {}))

    await _cancelled_when_running(case, unit())


Failing = Callable[[Case], Awaitable[None]]
#: Each failure: the statement queued behind it, what the unit raises (None: it checks its own), and the unit.
FAILURES: dict[str, tuple[str, type[Exception] | None, Failing]] = {
    "a removed user's transaction": ("account", Unauthorized, _opening_of_a_removed_user),
    "a removed user's read": ("account", Unauthorized, _a_removed_users_read),
    "an owner check raised in a pipeline": ("raised", NotFound, _raised_in_a_pipeline),
    "a CHECK constraint before the COMMIT": ("check", psycopg.errors.CheckViolation, _check_violated_before_commit),
    "row-level security with the closing statements": (
        "rls",
        psycopg.errors.InsufficientPrivilege,
        _rls_refused_with_commit,
    ),
    "a statement cancelled before the COMMIT": ("cancel", None, _cancelled_before_commit),
}


async def _live(case: Case, query: LiteralString, unit: int) -> int:
    """The other caller's unit `unit` of four (a user's transaction, a user's read, the service's pipeline and its
    transaction), running `query`."""
    claims = case.claims(case.live)
    if unit == 0:
        async with case.db.user_transaction(claims) as conn:
            assert conn.prepare_threshold == PREPARED_ON - 1
            return await _user_rows(conn, query)
    if unit == 1:
        async with case.db.user_statement(claims) as conn:
            return await _user_rows(conn, query)
    if unit == 2:
        async with case.db.service_pipeline() as conn:
            return await _user_rows(conn, query)
    async with case.db.service_transaction() as conn:
        await conn.execute(*BECOME_SERVICE)
        return await _user_rows(conn, query)


@pytest.mark.parametrize("failure", list(FAILURES))
async def test_another_callers_unit_runs_on_the_connection_a_failed_unit_left(case: Case, failure: str) -> None:
    kind, raised, fail = FAILURES[failure]
    after = _AFTER[kind]
    answers = []
    # The statement queued behind the failure runs in turn in another caller's unit and in the failing one, so that
    # its sixth run, the one psycopg prepares it on, is in the failing unit's aborted pipeline.
    for turn in range(ROUNDS):
        answers.append(await _live(case, after, turn % 4))
        if raised is None:
            await fail(case)
        else:
            with pytest.raises(raised):
                await fail(case)
    answers += [await _live(case, after, unit) for unit in range(4)]
    assert answers == [0] * (ROUNDS + 4)
    assert case.db.pool.get_stats()["pool_size"] == 1
