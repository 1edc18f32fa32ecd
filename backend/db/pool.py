"""The async connection pool and the two kinds of transaction voicegate runs.

User-facing work runs as `authenticated` with the caller's JWT claims, exactly as PostgREST does, so
RLS decides what a request sees. Service work (consumers, internal routes, scripts) runs as
`service_role`. Either way, a database that cannot be reached becomes `DatabaseUnavailable` (a 503),
and the lifecycle's own SQLSTATEs become the matching domain errors.

Every unit of database work (`database_work`: waiting for a connection, checking that it answers,
every statement and the commit) ends by a deadline, `VOICEGATE_DB_TIMEOUT` unless the caller gives
another. Past it the connection's socket is shut down: whatever awaits the connection fails at once,
the pool discards it instead of taking it back, and the work fails with `DatabaseUnavailable`. The
socket is cut rather than the task cancelled because psycopg meets a cancelled query by asking the
server to cancel it and waiting up to ten seconds for the answer, which a hung server never gives.
The server holds each transaction to the same deadline (`statement_timeout`,
`idle_in_transaction_session_timeout`), so a statement stuck on its side, or a client that vanished
mid-transaction, cannot pin a connection and its locks either. Each unit reports how it went to the
database's `Outage`, which logs an outage's start and end instead of every failed request.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from backend.errors import (
    ClientError,
    DatabaseUnavailable,
    Forbidden,
    IllegalTransition,
    LeaseLost,
    NotFound,
    StaleVersion,
    VoicegateError,
)
from backend.outages import DATABASE
from backend.settings import Settings

Connection = psycopg.AsyncConnection[dict[str, Any]]

Recorder = Callable[[Connection, Any], Awaitable[None]]
"""A hook a service calls with its open transaction and its result, just before that transaction commits
(an Idempotency-Key's record of the response, so the key and the write commit together). It may switch
the transaction to `service_role`, so a service calls it last."""

# SQLSTATEs raised by the lifecycle functions (supabase/migrations/*_attempt_lifecycle.sql).
_SQLSTATE_ERRORS: dict[str, type[VoicegateError]] = {
    "VG400": ClientError,
    "VG403": Forbidden,
    "VG404": NotFound,
    "VG409": StaleVersion,
    "VG422": IllegalTransition,
    "VG423": LeaseLost,
}
# Not reachable, shutting down, or (25P03) a transaction the server ended for idling past its deadline.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "25P03"})

_AS_SERVICE = (
    "select set_config('role', 'service_role', true), set_config('statement_timeout', %(limit)s, true),"
    " set_config('idle_in_transaction_session_timeout', %(limit)s, true)"
)
_AS_USER = (
    "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %(claims)s, true),"
    " set_config('statement_timeout', %(limit)s, true),"
    " set_config('idle_in_transaction_session_timeout', %(limit)s, true)"
)


class Pool(AsyncConnectionPool[Connection]):
    """psycopg's pool, plus the deadline of each unit of database work done with its connections."""

    def __init__(self, conninfo: str, *, work_timeout: float, **kwargs: Any) -> None:
        super().__init__(conninfo, **kwargs)
        self.work_timeout = work_timeout


def create_pool(dsn: str, settings: Settings) -> Pool:
    """A pool that is opened by the caller (`await pool.open()`); `database_work` checks each connection
    it hands out, under the work's deadline (the pool's own check would wait without one)."""
    return Pool(
        dsn,
        work_timeout=settings.db_timeout,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        timeout=settings.db_connect_timeout,
        # libpq's connect_timeout is whole seconds, at least 2 in effect.
        kwargs={"row_factory": dict_row, "connect_timeout": 2},
        open=False,
        name="voicegate",
    )


@contextmanager
def translate_db_errors() -> Iterator[None]:
    """Turn driver errors into domain errors: unreachable or hung → 503, lifecycle SQLSTATEs → 4xx."""
    try:
        yield
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnavailable from exc
    except psycopg.Error as exc:
        sqlstate = exc.sqlstate or ""
        error = _SQLSTATE_ERRORS.get(sqlstate)
        if error is not None:
            raise error(exc.diag.message_primary or None) from exc
        if sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES:
            raise DatabaseUnavailable from exc
        raise


@asynccontextmanager
async def database_work(pool: Pool, budget: float | None = None) -> AsyncIterator[Connection]:
    """A pooled connection that answers, for work that must end within `budget` seconds (default: the
    pool's `work_timeout`), waiting for the connection included; see the module docstring.

    Raises DatabaseUnavailable when no answering connection comes in time or the deadline passes while
    the work still needs the database; a connection that did not come back idle is discarded.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (pool.work_timeout if budget is None else budget)
    answered = False
    try:
        with translate_db_errors():
            conn = await _checkout(pool, deadline)
            answered = True
            cut = loop.call_at(deadline, _sever, conn)
            try:
                yield conn
            finally:
                cut.cancel()
                await _give_back(pool, conn)
    except DatabaseUnavailable as exc:
        DATABASE.failed(exc)
        raise
    except BaseException:
        if answered:
            DATABASE.recovered()  # it answered; whatever failed afterwards was not its availability
        raise
    DATABASE.recovered()


async def _checkout(pool: Pool, deadline: float) -> Connection:
    """A connection from the pool that answers an empty query, before `deadline`. Waiting for one takes
    at most the pool's `timeout`; a connection that fails its check (the server restarted since it was
    opened, or the deadline cut it) is discarded and the next one tried."""
    loop = asyncio.get_running_loop()
    wait_until = min(deadline, loop.time() + pool.timeout)
    while True:
        # A timeout of 0 raises PoolTimeout even with a connection ready: the budget is spent.
        conn = await pool.getconn(timeout=max(0.0, wait_until - loop.time()))
        cut = loop.call_at(deadline, _sever, conn)
        try:
            await AsyncConnectionPool.check_connection(conn)
        except psycopg.Error:
            await _give_back(pool, conn)
            if loop.time() >= deadline:
                raise
            continue
        finally:
            cut.cancel()
        return conn


def _sever(conn: Connection) -> None:
    """Shut the connection's socket down (the descriptor stays libpq's to close): a pending read or
    write on it ends at once, libpq marks the connection bad, and the pool discards it."""
    if conn.closed:
        return
    try:
        fd = conn.pgconn.socket
    except psycopg.Error:
        return
    with suppress(OSError), socket.socket(fileno=os.dup(fd)) as duplicate:
        duplicate.shutdown(socket.SHUT_RDWR)


async def _give_back(pool: Pool, conn: Connection) -> None:
    """Return `conn` to the pool; one that is not idle is closed first, because the pool would roll it
    back, a round trip a hung server never answers."""
    if conn.pgconn.transaction_status != TransactionStatus.IDLE:
        await conn.close()
    await pool.putconn(conn)


def _server_limit(pool: Pool, budget: float | None) -> str:
    """The unit's deadline as the server's `statement_timeout` and idle-in-transaction limit."""
    return f"{math.ceil((pool.work_timeout if budget is None else budget) * 1000)}ms"


@asynccontextmanager
async def service_transaction(pool: Pool, *, budget: float | None = None) -> AsyncIterator[Connection]:
    """A transaction as `service_role` (bypasses RLS): for consumers, internal routes and scripts. It is
    a unit of `database_work` (`budget`: its seconds, default the pool's `work_timeout`)."""
    async with database_work(pool, budget) as conn, conn.transaction():
        await conn.execute(_AS_SERVICE, {"limit": _server_limit(pool, budget)})
        yield conn


@asynccontextmanager
async def user_transaction(pool: Pool, claims: Mapping[str, Any]) -> AsyncIterator[Connection]:
    """A transaction as `authenticated` carrying `claims`, as PostgREST runs a request; a unit of
    `database_work` like `service_transaction`."""
    async with database_work(pool) as conn, conn.transaction():
        params = {"claims": json.dumps({**claims, "role": "authenticated"}), "limit": _server_limit(pool, None)}
        await conn.execute(_AS_USER, params)
        yield conn


async def ping(pool: Pool) -> None:
    """Raise DatabaseUnavailable unless the database answers a query within the work deadline."""
    async with database_work(pool) as conn, conn.transaction():
        await conn.execute("select 1")


TransactionSource = Connection | Pool | Callable[[], AbstractAsyncContextManager[Connection]]
"""Where batch work takes one transaction per item from: a pool (service transactions), a connection
that already acts as the service, or a factory of transactions (an operator script's, which set the
role and a lock timeout)."""


@asynccontextmanager
async def transaction_from(source: TransactionSource) -> AsyncIterator[Connection]:
    """A service transaction from a pool; a transaction (a savepoint if one is open) on a connection
    that already acts as the service; or whatever transaction a factory opens."""
    if isinstance(source, Pool):
        async with service_transaction(source) as conn:
            yield conn
    elif isinstance(source, psycopg.AsyncConnection):
        async with source.transaction():
            yield source
    else:
        async with source() as conn:
            yield conn


async def become_service(conn: Connection) -> None:
    """Switch a user transaction to `service_role` for its remaining statements.

    For use cases that check ownership under the caller's RLS and then write service-only rows in
    the same transaction. SET ROLE is checked against the session user, so this works from any role.
    """
    await conn.execute("select set_config('role', 'service_role', true)")
