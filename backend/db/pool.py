"""The async connection pool and the two kinds of transaction voicegate runs.

User-facing work runs as `authenticated` with the caller's JWT claims, exactly as PostgREST does, so
RLS decides what a request sees. Service work (consumers, internal routes, scripts) runs as
`service_role`. Either way, a database that cannot be reached becomes `DatabaseUnavailable` (a 503),
and the lifecycle's own SQLSTATEs become the matching domain errors.

A unit of database work (`database_work`) first waits for a connection: up to the pool's `timeout`
(`VOICEGATE_DB_CONNECT_TIMEOUT` for the API) while nothing else gets an answer from the database either
(it is down or hung: `DatabaseUnavailable`), and while other units keep getting answers (it is busy, not
down) for as long as the pool's `busy_wait`, then `ServerBusy` (a 429, never a 503 while the database
answers). Once it has its connection, the server must answer each of the work's statements (and the
commit) within a deadline, `VOICEGATE_DB_TIMEOUT` unless the caller gives another. Past it the
connection's socket is shut down: whatever awaits the connection fails at once, the pool discards it
instead of taking it back, and the work fails with `DatabaseUnavailable`. The socket is cut rather than
the task cancelled because psycopg meets a cancelled query by asking the server to cancel it and waiting
up to ten seconds for the answer, which a hung server never gives. The deadline runs while the server
is being waited for. It does not run while the process is busy with its own work between statements, or
has an answer it has not yet read: a burst that keeps the event loop busy for a second is not an outage
of the database. The server holds each statement to the deadline (`statement_timeout`) and a
transaction left idle to `BUSY_WAIT_DEADLINES` times it (`idle_in_transaction_session_timeout`), so a
statement stuck on its side, or a client that vanished mid-transaction, cannot pin a connection and its
locks either. Each unit reports how it went to the database's `Outage`, which logs an outage's start
and end instead of every failed request.

An HTTP request holds all its units to one budget besides (`request_budget`, `VOICEGATE_DB_TIMEOUT`):
the time it waits on a database that does not answer (for a connection while nobody gets answers, or
for the server's answer) adds up over its units, the Storage stand-in's that it reaches in-process
included, and any answer clears it. Once the request has waited its budget, its next units fail at once
instead of each waiting a deadline of its own (the removal of an object it stored, the release of its
Idempotency-Key), so a request that meets a hung database answers 503 within the one budget, while one
the database keeps answering, however slowly, waits no less than before.

A request's time is mostly round trips to the server, so a transaction costs as few as it can: a
connection handed out is not pinged (one whose server went away, a restart say, has already been told
so and is readable; that is checked without a round trip and such a connection discarded), and a
transaction's `BEGIN` and its role and claims travel in one pipeline with its first statement, so a
transaction of one query is two round trips (that query, then `COMMIT`). A worker's pool is a service
pool (`create_worker_pool`): its connections act as `service_role`, with the pool's limits, from the
moment they connect, so its transactions send no settings, and work that is one statement
(`service_statement`) goes alone, committed as it runs: one round trip, no `BEGIN`, no `COMMIT`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import select
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from typing import Any, ClassVar, LiteralString, TypeVar

import psycopg
from psycopg import AsyncCursor, AsyncTransaction
from psycopg.abc import Params, PQGen, Query
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from backend.errors import (
    ClientError,
    DatabaseUnavailable,
    Forbidden,
    IllegalTransition,
    LeaseLost,
    NotFound,
    ServerBusy,
    StaleVersion,
    VoicegateError,
)
from backend.outages import DATABASE
from backend.settings import Settings

Connection = psycopg.AsyncConnection[dict[str, Any]]
_T = TypeVar("_T")

# psycopg_pool warns of every connection it discards and every reconnection that fails, lines by the dozen
# per outage in each process; the units of work report the outage to DATABASE, which logs it once.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

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

_OPEN_TRANSACTION = frozenset({TransactionStatus.INTRANS, TransactionStatus.INERROR})

_AS_SERVICE = (
    "select set_config('role', 'service_role', true), set_config('statement_timeout', %(limit)s, true),"
    " set_config('idle_in_transaction_session_timeout', %(idle)s, true)"
)
# A service pool's connections, once, as they connect: the same role and limits for the whole session.
_SERVICE_SESSION = (
    "select set_config('role', 'service_role', false), set_config('statement_timeout', %(limit)s, false),"
    " set_config('idle_in_transaction_session_timeout', %(idle)s, false)"
)
#: Statements a unit sends ahead of its first one, with their parameters.
Opening = tuple[tuple[LiteralString, Mapping[str, Any]], ...]
_BEGIN: tuple[LiteralString, Mapping[str, Any]] = ("begin", {})
_AS_USER = (
    "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %(claims)s, true),"
    " set_config('statement_timeout', %(limit)s, true),"
    " set_config('idle_in_transaction_session_timeout', %(idle)s, true)"
)


class RequestBudget:
    """How long one request may still wait on a database that does not answer, over all its units of work."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        #: Seconds waited on the database since it last answered the request.
        self.stalled = 0.0

    def left(self) -> float:
        """Seconds the request may still wait without an answer."""
        return self.seconds - self.stalled


_REQUEST_BUDGET: ContextVar[RequestBudget | None] = ContextVar("voicegate_request_budget", default=None)


@contextmanager
def request_budget(seconds: float) -> Iterator[RequestBudget]:
    """Hold the block's units of database work (one request's) to one budget of `seconds` of waiting on a
    database that does not answer (see the module docstring). A request reached in-process from another
    one (the Storage stand-in's, from an API request) keeps the budget of the request it serves."""
    current = _REQUEST_BUDGET.get()
    if current is not None:
        yield current
        return
    budget = RequestBudget(seconds)
    token = _REQUEST_BUDGET.set(budget)
    try:
        yield budget
    finally:
        _REQUEST_BUDGET.reset(token)


class PooledConnection(psycopg.AsyncConnection[dict[str, Any]]):
    """A pooled connection. It is in autocommit mode: the units of work below say where their
    transactions begin and end, so that a transaction's opening (`BEGIN` and its settings) can wait
    and go in one pipeline with its first statement instead of costing round trips of its own."""

    #: Statements the unit's first statement takes along (`BEGIN` and its settings), until it is sent.
    _opening: Opening | None = None
    #: How many more statements the unit may run, when it is held to a number (`service_statement`: one).
    _statements_left: int | None = None
    #: Whether a statement got its answer since the connection was handed out (the database is up).
    answered = False
    #: When (monotonic seconds) any pooled connection of this process last got an answer: a wait for a
    #: connection that sees one is a wait on a busy database, not on a dead one. Counted as answers come,
    #: and over every pool, as all of them talk to the one database: a pool whose units all hold their
    #: connections for long (the Storage stand-in's, through a burst of uploads) is still busy, not down.
    heard_at: ClassVar[float] = -math.inf
    #: Since when (the event loop's clock) the connection waits for the server, while it does.
    waiting_since: float | None = None
    #: How long the current wait may last by its request's budget (unbounded outside a request).
    wait_limit: float = math.inf

    async def wait(self, gen: PQGen[_T], *args: Any, **kwargs: Any) -> _T:
        """psycopg's wait on the server (every statement, pipeline sync and commit goes through it),
        noting when it began for the unit's deadline, and charging it to the request's budget if it
        ends without an answer. A request that has no budget left does not wait at all."""
        loop = asyncio.get_running_loop()
        budget = _REQUEST_BUDGET.get()
        self.wait_limit = math.inf if budget is None else budget.left()
        if self.wait_limit <= 0:
            _sever(self)  # the wait fails at once, and the pool discards the connection
        self.waiting_since = started = loop.time()
        try:
            return await super().wait(gen, *args, **kwargs)
        except BaseException:
            if budget is not None:
                budget.stalled += loop.time() - started
            raise
        finally:
            self.waiting_since = None

    def open_with(self, *opening: tuple[LiteralString, Mapping[str, Any]]) -> None:
        """Send these statements (`BEGIN`, settings) with the first statement executed, in one pipeline."""
        self._opening = opening or None

    def run_alone(self) -> None:
        """Take one statement only: the server commits it (with its opening, one implicit transaction) as
        it answers, so a second one would not share its transaction and is refused."""
        self._statements_left = 1

    async def execute(
        self, query: Query, params: Params | None = None, *, prepare: bool | None = None, binary: bool = False
    ) -> AsyncCursor[dict[str, Any]]:
        """Execute `query` (after the transaction's opening, in one round trip, if it is still to send)."""
        if self._statements_left is not None:
            if self._statements_left == 0:
                raise RuntimeError("a service_statement runs one statement; use service_transaction for more")
            self._statements_left -= 1
        try:
            if self._opening is None:
                cursor = await super().execute(query, params, prepare=prepare, binary=binary)  # type: ignore[arg-type]
            else:
                async with self.pipeline():
                    await self._send_opening()
                    cursor = await super().execute(query, params, prepare=prepare, binary=binary)  # type: ignore[arg-type]
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            self._heard()  # with an error of the statement's own
            raise
        self._heard()
        return cursor

    def _heard(self) -> None:
        self.answered = True
        PooledConnection.heard_at = time.monotonic()
        budget = _REQUEST_BUDGET.get()
        if budget is not None:
            budget.stalled = 0.0

    @asynccontextmanager
    async def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> AsyncIterator[AsyncTransaction]:
        """psycopg's transaction block: a savepoint inside a unit's transaction (opened first if it
        still waits for a statement), a transaction of its own outside one."""
        if self._statements_left is not None:
            raise RuntimeError("a service_statement runs one statement, not a transaction block")
        if self._opening is not None:
            async with self.pipeline():
                await self._send_opening()
        async with super().transaction(savepoint_name, force_rollback) as tx:
            yield tx

    async def _send_opening(self) -> None:
        """Queue the unit's opening in the caller's pipeline; it waits no more."""
        opening, self._opening = self._opening or (), None
        for statement, params in opening:
            await super().execute(statement, params)

    def unit_ended(self) -> None:
        """Forget what the unit that held the connection asked of it (its opening, its statement count)."""
        self._opening = self._statements_left = None

    async def end(self, *, commit: bool) -> None:
        """Commit (or roll back) the unit's transaction; nothing to send if it never ran a statement."""
        if self._opening is not None:
            self._opening = None
            return
        if commit:
            await super().execute("commit")
            self._heard()
        elif not self.broken and self.pgconn.transaction_status in _OPEN_TRANSACTION:
            await super().execute("rollback")


class Pool(AsyncConnectionPool[PooledConnection]):
    """psycopg's pool, plus how long its units wait for a connection and the deadline of their work."""

    def __init__(
        self, conninfo: str, *, work_timeout: float, busy_wait: float, service: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(
            conninfo, connection_class=PooledConnection, configure=self._act_as_service if service else None, **kwargs
        )
        self.work_timeout = work_timeout
        self.busy_wait = busy_wait
        #: Whether its connections act as `service_role`, with the pool's limits, from the start.
        self.service = service

    async def _act_as_service(self, conn: PooledConnection) -> None:
        await conn.execute(_SERVICE_SESSION, _server_limits(self, None))


#: How many times its work's deadline an API unit queues for a connection while the database is answering
#: other units (5 s by default), before it is answered 429.
BUSY_WAIT_DEADLINES = 5


def create_pool(dsn: str, settings: Settings, *, patience: float | None = None, service: bool = False) -> Pool:
    """A pool that is opened by the caller (`await pool.open()`); `database_work` discards a connection
    whose server hung up on it as it hands it out (the pool's own check would cost a round trip).

    Its units wait for a connection as the API's do (see the module docstring), or, with `patience`
    (seconds), for that long whatever the database does: a worker or the Storage stand-in, whose callers
    would rather wait than fail, and which never take more work than they have connections for. With
    `service` it is a service pool (see the module docstring): for processes that only act as the service.
    """
    return Pool(
        dsn,
        service=service,
        work_timeout=settings.db_timeout,
        busy_wait=patience or max(settings.db_connect_timeout, BUSY_WAIT_DEADLINES * settings.db_timeout),
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        timeout=patience or settings.db_connect_timeout,
        # libpq's connect_timeout is whole seconds, at least 2 in effect.
        kwargs={"row_factory": dict_row, "connect_timeout": 2, "autocommit": True},
        open=False,
        name="voicegate",
    )


def create_worker_pool(dsn: str, settings: Settings) -> Pool:
    """The service pool a worker's consumers run on, whose units wait for a connection as long as a
    message stays invisible: waiting is not failing."""
    return create_pool(dsn, settings, patience=settings.queue_visibility_seconds, service=True)


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
async def database_work(pool: Pool, budget: float | None = None) -> AsyncIterator[PooledConnection]:
    """A pooled connection, for work that must end within `budget` seconds (default: the pool's
    `work_timeout`) of getting it; see the module docstring for how long getting it may take.

    Raises DatabaseUnavailable when no connection comes while the database answers nobody, or the deadline
    passes while the work still needs the database; ServerBusy when the connections stay busy with others'
    work past the pool's `busy_wait`. A connection that did not come back idle is discarded.
    """
    loop = asyncio.get_running_loop()
    conn: PooledConnection | None = None
    try:
        with translate_db_errors():
            conn = await _checkout(pool)
            deadline = _Deadline(loop, conn, pool.work_timeout if budget is None else budget)
            try:
                yield conn
            finally:
                deadline.cancel()
                await _give_back(pool, conn)
    except DatabaseUnavailable as exc:
        DATABASE.failed(exc)
        raise
    except BaseException:
        _answered(conn)  # whatever failed after it answered was not its availability
        raise
    _answered(conn)


def _answered(conn: PooledConnection | None) -> None:
    if conn is not None and conn.answered:
        DATABASE.recovered()


async def _checkout(pool: Pool) -> PooledConnection:
    """A connection from the pool whose server has not hung up on it (such a one is discarded and the next
    one taken). Waits in rounds of the pool's `timeout` (at most what is left of the request's budget): a
    round in which no connection of this process got an answer from the database raises PoolTimeout,
    charged to the request's budget; past the pool's `busy_wait` it is ServerBusy. A round after the
    first runs from the last answer anyone got, not from when the one before ended: a wait that began
    as the database hung, while answers sent just before still came in, is not a wait on a busy one."""
    budget = _REQUEST_BUDGET.get()
    started = time.monotonic()
    give_up = started + pool.busy_wait

    def round_end(now: float) -> float:
        return min(give_up, now + (pool.timeout if budget is None else min(pool.timeout, budget.left())))

    round_started, round_ends = started, round_end(started)
    while True:
        try:
            left = round_ends - time.monotonic()
            if left <= 0:
                raise PoolTimeout("no connection came in time")  # noqa: TRY301 - handled as getconn's own
            conn = await pool.getconn(timeout=left)
        except PoolTimeout:
            now = time.monotonic()
            heard_at = PooledConnection.heard_at
            if heard_at <= round_started:
                # Nobody got an answer while this waited: the database is down or hung.
                if budget is not None:
                    budget.stalled += now - round_started
                raise
            if now >= give_up:
                raise ServerBusy from None
            round_started, round_ends = heard_at, round_end(heard_at)
            continue
        conn.answered = False
        if _hung_up(conn):
            await conn.close()
            await pool.putconn(conn)
            continue
        return conn


def _hung_up(conn: PooledConnection) -> bool:
    """Whether the server has ended this idle connection, seen without a round trip: the server only
    speaks to an idle connection to say it is closing it (a restart, a terminated backend), so a
    readable socket, or one in error, means a dead connection. A hung server is not seen here: the
    unit's deadline covers that."""
    return conn.broken or conn.pgconn.status != ConnStatus.OK or _readable(conn)


def _readable(conn: PooledConnection) -> bool:
    """Whether the server has sent something the connection has not read yet (or its socket is gone)."""
    try:
        fd = conn.pgconn.socket
    except psycopg.Error:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _Deadline:
    """Cuts the unit's connection once the server has kept it waiting `budget` seconds, or what was left of
    its request's budget when the wait began. While the connection does not wait (the process works
    between statements) or its answer has come but is not read yet (the event loop is busy), the server
    is not late, and the deadline looks again later."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn: PooledConnection, budget: float) -> None:
        self._loop, self._conn, self._budget = loop, conn, budget
        self._request = _REQUEST_BUDGET.get()
        self._handle = loop.call_at(loop.time() + self._next_wait(), self._check)

    def _next_wait(self) -> float:
        """The longest a wait beginning now may last (a request with nothing left fails its waits as they
        begin, so the look after that is the unit's own)."""
        left = math.inf if self._request is None else self._request.left()
        return min(self._budget, left) if left > 0 else self._budget

    def _check(self) -> None:
        now, since = self._loop.time(), self._conn.waiting_since
        if since is None or _readable(self._conn):
            due = now + self._next_wait()
        else:
            due = since + min(self._budget, self._conn.wait_limit)
        if due <= now:
            _sever(self._conn)
        else:
            self._handle = self._loop.call_at(due, self._check)

    def cancel(self) -> None:
        self._handle.cancel()


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


async def _give_back(pool: Pool, conn: PooledConnection) -> None:
    """Return `conn` to the pool; one that is not idle is closed first, because the pool would roll it
    back, a round trip a hung server never answers."""
    if conn.pgconn.transaction_status != TransactionStatus.IDLE:
        await conn.close()
    await pool.putconn(conn)


def _server_limits(pool: Pool, budget: float | None) -> dict[str, str]:
    """The unit's deadline as the server's `statement_timeout`, and `BUSY_WAIT_DEADLINES` times it as its
    idle-in-transaction limit (a process busy between statements is not a vanished client)."""
    limit = pool.work_timeout if budget is None else budget
    return {"limit": f"{math.ceil(limit * 1000)}ms", "idle": f"{math.ceil(limit * BUSY_WAIT_DEADLINES * 1000)}ms"}


def _as_service(pool: Pool, budget: float | None) -> Opening:
    """What makes a unit the service at its limits: nothing on a service pool at its own limits."""
    if pool.service and budget is None:
        return ()
    return ((_AS_SERVICE, _server_limits(pool, budget)),)


@asynccontextmanager
async def _transaction(pool: Pool, budget: float | None, setup: Opening) -> AsyncIterator[Connection]:
    """A unit of `database_work` that is one transaction opened with `setup` (sent with its first
    statement), committed when the body ends, rolled back when it raises."""
    async with database_work(pool, budget) as conn:
        conn.open_with(_BEGIN, *setup)
        try:
            yield conn
        except BaseException:
            with suppress(psycopg.Error):  # the error being raised says more than a failed rollback
                await conn.end(commit=False)
            raise
        await conn.end(commit=True)


@asynccontextmanager
async def service_transaction(pool: Pool, *, budget: float | None = None) -> AsyncIterator[Connection]:
    """A transaction as `service_role` (bypasses RLS): for consumers, internal routes and scripts. It is
    a unit of `database_work` (`budget`: its seconds, default the pool's `work_timeout`)."""
    async with _transaction(pool, budget, _as_service(pool, budget)) as conn:
        yield conn


@asynccontextmanager
async def service_statement(pool: Pool, *, budget: float | None = None) -> AsyncIterator[Connection]:
    """One statement as `service_role`, committed as the server answers it: a unit of `database_work`
    of one round trip, with no `BEGIN` or `COMMIT` to send. On a service pool at its own limits the
    statement goes alone; otherwise its role and limits go with it in one pipeline, which the server
    runs as one implicit transaction. A second statement raises RuntimeError."""
    async with database_work(pool, budget) as conn:
        conn.open_with(*_as_service(pool, budget))
        conn.run_alone()
        try:
            yield conn
        finally:
            conn.unit_ended()


@asynccontextmanager
async def user_transaction(pool: Pool, claims: Mapping[str, Any]) -> AsyncIterator[Connection]:
    """A transaction as `authenticated` carrying `claims`, as PostgREST runs a request; a unit of
    `database_work` like `service_transaction`."""
    user = {"claims": json.dumps({**claims, "role": "authenticated"}), **_server_limits(pool, None)}
    async with _transaction(pool, None, ((_AS_USER, user),)) as conn:
        yield conn


async def ping(pool: Pool) -> None:
    """Raise DatabaseUnavailable unless the database answers a query within the work deadline."""
    async with database_work(pool) as conn:
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
