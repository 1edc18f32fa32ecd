"""Units of database work, and the two kinds of transaction voicegate runs.

A process's `Database` is the one way to them outside `backend/db/`: the composition root opens each pool behind
one, and a use case is given the `Database` (its methods are the units) or the `Connection` of its caller's unit,
never the pool (`tests/unit/test_layers.py` holds every other module to that).

User-facing work runs as `authenticated` with the caller's JWT claims, exactly as PostgREST does, so
RLS decides what a request sees. Service work (consumers, internal routes, scripts) runs as
`service_role`. Either way, a database that cannot be reached becomes `DatabaseUnavailable` (a 503),
and the lifecycle's own SQLSTATEs become the matching domain errors. A unit waits for its connection as
its pool says (`backend.db.pool`), is held to its deadline once it has it (`backend.db.deadline`), and
reports how it went to the database's `Outage`, which logs an outage's start and end instead of every
failed request. On a service pool at its own limits, work that is one statement (`service_statement`) goes
alone, committed as it runs: one round trip, no `BEGIN`, no `COMMIT`; so do statements that need no answer
before the next is sent (`service_pipeline`), in one pipeline. Concurrent callers that reach the same such
statements at the same moment (a worker's attempts, read in one batch) send them together (`grouped`): one
statement over the group's items, and one unit of work, for the group.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, LiteralString

import msgspec
import psycopg
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg_pool import PoolTimeout

from backend.db.connection import Connection, Opening, PooledConnection, last_answer_at
from backend.db.deadline import Deadline, current_budget, readable
from backend.db.pool import Pool
from backend.db.shares import OWNER, OwnLine
from backend.errors import (
    AccountGone,
    ClientError,
    DatabaseUnavailable,
    Forbidden,
    IllegalTransition,
    LeaseLost,
    NotFound,
    ServerBusy,
    StaleVersion,
    TooManyRequests,
    VoicegateError,
)
from backend.outages import DATABASE

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
    # voicegate.require_user: the token's user is gone (deleted, or soft-deleted, since it was signed).
    "VG401": AccountGone,
}
#: A write naming a user that is gone, as the service acts for the caller: every foreign key to auth.users is its
#: table's `owner_id`, and every such write names the caller. Their token outlived them: 401, as a user
#: transaction's opening answers.
_FOREIGN_KEY_VIOLATION = "23503"
_OWNER_KEY_SUFFIX = "_owner_id_fkey"
# Not reachable, shutting down, or (25P03) a transaction the server ended for idling past its deadline.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "25P03"})

#: What makes a transaction the service at its limits (`backend.db.pool.server_limits`): a service pool's
#: connections are already.
AS_SERVICE = (
    "select set_config('role', 'service_role', true), set_config('statement_timeout', %(limit)s, true),"
    " set_config('idle_in_transaction_session_timeout', %(idle)s, true)"
)
_BEGIN: tuple[LiteralString, Mapping[str, Any]] = ("begin", {})
#: The caller's role, claims and limits, and (evaluated after them, left to right) whether their user is still there:
#: a primary-key lookup in the statement the unit sends anyway, raising VG401 (a 401) when it is gone.
_AS_USER = (
    "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %(claims)s, true),"
    " set_config('statement_timeout', %(limit)s, true),"
    " set_config('idle_in_transaction_session_timeout', %(idle)s, true), voicegate.require_user()"
)
#: `_AS_USER`, and no write (`user_statement`).
_AS_READER = _AS_USER + ", set_config('transaction_read_only', 'on', true)"


#: How late (a share of the pool's `timeout`) a wait for a connection may end before its round is taken for
#: one this process slept through rather than one it watched the database not answer.
_LATE_WAKE = 0.1
#: How many connections of units of work the current task holds (a user's share does not hold a nested one back).
_HOLDING: contextvars.ContextVar[int] = contextvars.ContextVar("voicegate.db.holding", default=0)


@contextmanager
def translate_db_errors() -> Iterator[None]:
    """Turn driver errors into domain errors: unreachable or hung → 503, lifecycle SQLSTATEs → 4xx."""
    try:
        yield
    except (PoolTimeout, psycopg.Error) as exc:
        error = _translated(exc)
        if error is exc:
            raise
        raise error from exc


def _translated(exc: BaseException) -> BaseException:
    """The domain error a driver error stands for (`translate_db_errors`), raised from it, or `exc` itself."""
    error: BaseException
    if isinstance(exc, (PoolTimeout, psycopg.OperationalError)):
        error = DatabaseUnavailable()
    elif isinstance(exc, psycopg.Error):
        sqlstate = exc.sqlstate or ""
        known = _SQLSTATE_ERRORS.get(sqlstate)
        if known is not None:
            error = known(exc.diag.message_primary or None)
        elif sqlstate == _FOREIGN_KEY_VIOLATION and (exc.diag.constraint_name or "").endswith(_OWNER_KEY_SUFFIX):
            error = AccountGone()
        elif sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES:
            error = DatabaseUnavailable()
        else:
            return exc
    else:
        return exc
    # As `raise error from exc` will have it, already for the outage log, which tells causes apart by it.
    error.__cause__ = exc
    return error


class _Work:
    """A unit of `Database.work`: its checkout, deadline, give-back and report to the outage log. An object
    entered once, and the units made of it (`service_statement`, `service_pipeline`) its subclasses, rather
    than generator-based context managers nested in one another: a worker takes four or five units per
    attempt, and each such layer costs an async generator, the event loop's hook on its first iteration and
    two frames more each way (`bench/lifecycle.py`'s units path measures a unit)."""

    __slots__ = ("_budget", "_conn", "_deadline", "_holding", "_pool")

    def __init__(self, pool: Pool, budget: float | None) -> None:
        self._pool = pool
        self._budget = budget

    async def __aenter__(self) -> PooledConnection:
        pool, budget = self._pool, self._budget
        held = _HOLDING.get()
        try:
            conn = await _checkout(pool, nested=held > 0)
        except BaseException as exc:
            error = _settled(exc, None)
            if error is exc:
                raise
            raise error from exc
        self._holding = _HOLDING.set(held + 1)
        self._conn = conn
        self._deadline = Deadline(asyncio.get_running_loop(), conn, pool.work_timeout if budget is None else budget)
        return conn

    async def __aexit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._end(exc, exc)

    async def _end(self, exc: BaseException | None, raised: BaseException | None) -> None:
        """Give the connection back after a body that raised `exc` (None: it ended), and raise what the unit
        raises: `raised` (what ending the body raised, `exc` unless that raised something else) or what giving
        the connection back raised, as the domain error it stands for; `exc` itself goes on as it is."""
        conn = self._conn
        with suppress(ValueError):  # ended in another context than it began in: that one is gone
            _HOLDING.reset(self._holding)
        try:
            self._deadline.cancel()
            await _give_back(self._pool, conn)
        except BaseException as failed:
            raised = failed
        if raised is None:
            _answered(conn)
            return
        error = _settled(raised, conn)
        if error is exc:
            return
        if error is raised:
            raise raised
        raise error from raised


def _settled(exc: BaseException, conn: PooledConnection | None) -> BaseException:
    """What a unit that failed with `exc` raises (the domain error it stands for), reported: an unreachable
    database to the outage log, anything else as no sign of the database's availability once `conn` got an
    answer (whatever failed after it answered was not its availability)."""
    error = _translated(exc)
    if isinstance(error, DatabaseUnavailable):
        DATABASE.failed(error)
    else:
        _answered(conn)
    return error


def _answered(conn: PooledConnection | None) -> None:
    if conn is not None and conn.answered_sent_at is not None:
        DATABASE.recovered(conn.answered_sent_at)


async def _checkout(pool: Pool, *, nested: bool = False) -> PooledConnection:
    """A connection from the pool whose server has not hung up on it (such a one is discarded and the next
    one taken), for the user whose request this is, within their share of the pool unless `nested` (the task
    holds one already). Waits in rounds of the pool's `timeout` (at most what is left of the request's budget): a
    round in which no connection of this process got an answer from the database raises PoolTimeout,
    charged to the request's budget; past the pool's `busy_wait` it is ServerBusy. A round after the
    first runs from the last answer anyone got, not from when the one before ended: a wait that began
    as the database hung, while answers sent just before still came in, is not a wait on a busy one. A round
    that ends late (the process was not running) is no evidence either way, and another begins."""
    budget = current_budget()
    started = time.monotonic()
    give_up = started + pool.busy_wait

    def round_end(now: float) -> float:
        return min(give_up, now + (pool.timeout if budget is None else min(pool.timeout, budget.left())))

    round_started, round_ends = started, round_end(started)
    while True:
        left = round_ends - time.monotonic()
        try:
            if left <= 0:
                raise PoolTimeout("no connection came in time")  # noqa: TRY301 - handled as getconn's own
            conn = await _getconn(pool, left, capped=not nested)
        except OwnLine:
            # A round spent behind the user's own units is no evidence about the database: their units may all be
            # waiting on a lock of theirs. Past the busy wait the user is told the server is busy. Unless another
            # unit has found the database down meanwhile and nobody has heard from it since: then it is.
            if _down_since(round_started):
                raise PoolTimeout("the database stopped answering while this waited") from None
            now = time.monotonic()
            if now >= give_up or (budget is not None and budget.left() <= 0):
                raise ServerBusy from None
            round_started, round_ends = now, round_end(now)
            continue
        except PoolTimeout:
            now = time.monotonic()
            if left > 0 and now - round_ends > pool.timeout * _LATE_WAKE:
                # This process did not run for much of the round (a loaded machine descheduled it, or
                # something held the event loop), so answers that came meanwhile are still unread: the
                # silence says nothing of the database. Past the busy wait, the process is the busy one.
                if now >= give_up:
                    raise ServerBusy from None
                round_started, round_ends = now, round_end(now)
                continue
            heard_at = last_answer_at()
            if heard_at <= round_started:
                # Nobody got an answer while this waited: the database is down or hung.
                if budget is not None:
                    budget.stalled += now - round_started
                raise
            if now >= give_up:
                raise ServerBusy from None
            round_started, round_ends = heard_at, round_end(heard_at)
            continue
        if await _usable(pool, conn, started):
            return conn


async def _usable(pool: Pool, conn: PooledConnection, waited_from: float) -> bool:
    """Whether `conn`, taken for a unit that began waiting at `waited_from`, may serve it; one the server has hung up
    on is closed and given back (False). PoolTimeout when the database was found not answering while the unit
    waited: the place came free because the unit that held it found so, and this one would wait out its deadline
    as that one did."""
    if _down_since(waited_from):
        await _putconn(pool, conn)
        raise PoolTimeout("the database stopped answering while this waited")
    conn.answered_sent_at = None
    if _hung_up(conn):
        await conn.close()
        await _putconn(pool, conn)
        return False
    return True


def _down_since(moment: float) -> bool:
    """Whether a unit found the database not answering after `moment` (monotonic seconds), and no connection of
    this process has had an answer since."""
    since = DATABASE.since
    return since is not None and since >= moment and last_answer_at() <= since


async def _getconn(pool: Pool, timeout: float, *, capped: bool) -> PooledConnection:  # noqa: ASYNC109 - the pool's
    """`pool.getconn`, first waiting for the place of the request's user among the pool's connections (when the
    pool shares them by user): the pool's own queue then never has anyone in it."""
    shares = pool.shares
    if shares is None:
        return await _pool_getconn(pool, timeout)
    owner = OWNER.get()
    started = time.monotonic()
    await shares.take(owner, timeout, capped=capped)
    try:
        conn = await _pool_getconn(pool, max(0.0, timeout - (time.monotonic() - started)))
    except BaseException:
        shares.give_back(owner)
        raise
    conn.share_owner = owner
    return conn


async def _pool_getconn(pool: Pool, timeout: float) -> PooledConnection:  # noqa: ASYNC109 - the pool's own
    """`pool.getconn`, its cancellation kept a cancellation. psycopg_pool waits for a connection in
    `asyncio.wait_for` on a condition; on Python 3.11, a task cancelled while that wait times out leaves the
    condition's lock unheld, and the pool's waiter raises RuntimeError("Lock is not acquired.") in place of the
    CancelledError: seen under load as a 500 for a request whose deadline had passed, instead of its 503."""
    try:
        return await pool.getconn(timeout=timeout)
    except RuntimeError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError from exc
        raise


async def _putconn(pool: Pool, conn: PooledConnection) -> None:
    """`pool.putconn`, and the place of the user it was taken for given back."""
    try:
        await pool.putconn(conn)
    finally:
        if pool.shares is not None:
            pool.shares.give_back(conn.share_owner)


def _hung_up(conn: PooledConnection) -> bool:
    """Whether the server has ended this idle connection, seen without a round trip: the server only
    speaks to an idle connection to say it is closing it (a restart, a terminated backend), so a
    readable socket, or one in error, means a dead connection. A hung server is not seen here: the
    unit's deadline covers that."""
    return conn.broken or conn.pgconn.status != ConnStatus.OK or readable(conn)


async def _give_back(pool: Pool, conn: PooledConnection) -> None:
    """Return `conn` to the pool; one that is not idle is closed first, because the pool would roll it
    back, a round trip a hung server never answers."""
    try:
        if conn.pgconn.transaction_status != TransactionStatus.IDLE:
            await conn.close()
    except BaseException:
        if pool.shares is not None:
            pool.shares.give_back(conn.share_owner)
        raise
    await _putconn(pool, conn)


def _as_service(pool: Pool, budget: float | None) -> Opening:
    """What makes a unit the service at its limits: nothing on a service pool at its own limits."""
    if pool.service and budget is None:
        return ()
    return ((AS_SERVICE, pool.server_limits(budget)),)


@asynccontextmanager
async def _transaction(pool: Pool, budget: float | None, setup: Opening) -> AsyncIterator[Connection]:
    """A unit of `Database.work` that is one transaction opened with `setup` (sent with its first
    statement), committed when the body ends, rolled back when it raises."""
    async with _Work(pool, budget) as conn:
        conn.open_with(_BEGIN, *setup)
        try:
            yield conn
        except BaseException:
            with suppress(psycopg.Error):  # the error being raised says more than a failed rollback
                await conn.end(commit=False)
            raise
        await conn.end(commit=True)


class _Statement(_Work):
    """`Database.service_statement`'s unit."""

    __slots__ = ()

    async def __aenter__(self) -> PooledConnection:
        conn = await super().__aenter__()
        conn.open_with(*_as_service(self._pool, self._budget))
        conn.run_alone()
        return conn

    async def __aexit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._conn.unit_ended()
        await self._end(exc, exc)


class _Pipeline(_Work):
    """`Database.service_pipeline`'s unit: the connection's `pipelined` block inside a unit of work."""

    __slots__ = ("_pipelined",)

    async def __aenter__(self) -> PooledConnection:
        conn = await super().__aenter__()
        conn.open_with(*_as_service(self._pool, self._budget))
        self._pipelined = conn.pipelined()
        try:
            await self._pipelined.__aenter__()
        except BaseException as exc:
            conn.unit_ended()
            await self._end(exc, exc)
            raise
        return conn

    async def __aexit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        raised = exc
        try:
            await self._pipelined.__aexit__(typ, exc, tb)
        except BaseException as failed:
            raised = failed
        self._conn.unit_ended()
        await self._end(exc, raised)


Rows = list[dict[str, Any]]
#: A member of a group that failed for its own part, not the database's: it runs its item alone.
_ALONE: Final = object()


class _Group:
    """The items handed to one group of statements in one turn of the event loop, each with its caller's future."""

    __slots__ = ("futures", "items")

    def __init__(self) -> None:
        self.items: list[Mapping[str, Any]] = []
        self.futures: list[asyncio.Future[Any]] = []


async def _run_group(
    conn: Connection, queries: tuple[LiteralString, ...], items: Sequence[Mapping[str, Any]]
) -> list[list[Rows]]:
    """Each of `queries` for all of `items` (`Database.grouped`), every one sent before any answer is waited for:
    for each item, for each query, the rows that answer it."""
    params = {"items": msgspec.json.encode([{**item, "n": n} for n, item in enumerate(items)], enc_hook=str).decode()}
    cursors = [await conn.execute(query, params) for query in queries]
    answers: list[list[Rows]] = [[[] for _ in queries] for _ in items]
    for at, cursor in enumerate(cursors):
        for row in await cursor.fetchall():
            answers[row.pop("n")][at].append(row)
    return answers


def _as_user(pool: Pool, claims: Mapping[str, Any], opening: LiteralString = _AS_USER) -> Opening:
    """What makes a unit the caller under RLS, as PostgREST makes a request: `authenticated`, their claims,
    and the pool's limits."""
    return ((opening, {"claims": json.dumps({**claims, "role": "authenticated"}), **pool.server_limits(None)}),)


@dataclass(frozen=True)
class Database:
    """A process's database, as the units of work its use cases run: the one way to open a transaction
    outside `backend.db`. It holds the pool the composition root opened (and closes); a use case is given
    the `Database`, or the `Connection` of its caller's unit when it runs inside it.

    Each unit is `work` that waits for its connection as the pool says (`backend.db.pool`) and is held to
    its deadline once it has it: a transaction as the service (`service_transaction`), one statement or
    one pipeline committed as it runs (`service_statement`, `service_pipeline`), or the caller's own under
    RLS (`user_transaction`, `user_statement`)."""

    #: The pool its units take their connections from; for the database layer and the composition root.
    pool: Pool
    #: The groups gathering in this turn of the event loop, by their queries (`grouped`).
    _groups: dict[tuple[LiteralString, ...], _Group] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    #: The tasks sending groups (the loop keeps only weak references to its tasks).
    _sending: set[asyncio.Task[None]] = field(default_factory=set, init=False, compare=False, repr=False)

    def work(self, budget: float | None = None) -> AbstractAsyncContextManager[PooledConnection]:
        """A pooled connection, for work that must end within `budget` seconds (default: the pool's
        `work_timeout`) of getting it; see `backend.db.pool` for how long getting it may take.

        Raises DatabaseUnavailable when no connection comes while the database answers nobody, or the deadline
        passes while the work still needs the database; ServerBusy when the connections stay busy with others'
        work past the pool's `busy_wait`. A connection that did not come back idle is discarded.
        """
        return _Work(self.pool, budget)

    @asynccontextmanager
    async def service_transaction(self, *, budget: float | None = None) -> AsyncIterator[Connection]:
        """A transaction as `service_role` (bypasses RLS): for consumers, internal routes and scripts. It is
        a unit of `work` (`budget`: its seconds, default the pool's `work_timeout`)."""
        async with _transaction(self.pool, budget, _as_service(self.pool, budget)) as conn:
            yield conn

    def service_statement(self, *, budget: float | None = None) -> AbstractAsyncContextManager[Connection]:
        """One statement as `service_role`, committed as the server answers it: a unit of `work` of one
        round trip, with no `BEGIN` or `COMMIT` to send. On a service pool at its own limits the statement
        goes alone; otherwise its role and limits go with it in one pipeline, which the server runs as one
        implicit transaction. A second statement raises RuntimeError."""
        return _Statement(self.pool, budget)

    def service_pipeline(self, *, budget: float | None = None) -> AbstractAsyncContextManager[Connection]:
        """Statements as `service_role` sent in one pipeline, which the server runs as one implicit
        transaction committed at the pipeline's end: a unit of `work` of one round trip, with no `BEGIN` or
        `COMMIT` to send, for statements none of which must be answered before the next is sent (their
        results may still be fetched as they come). A failing statement rolls back those before it, and the
        rest are not run; so does the block raising."""
        return _Pipeline(self.pool, budget)

    @asynccontextmanager
    async def user_transaction(self, claims: Mapping[str, Any]) -> AsyncIterator[Connection]:
        """A transaction as `authenticated` carrying `claims`, as PostgREST runs a request; a unit of
        `work` like `service_transaction`."""
        async with _transaction(self.pool, None, _as_user(self.pool, claims)) as conn:
            yield conn

    @asynccontextmanager
    async def user_statement(self, claims: Mapping[str, Any]) -> AsyncIterator[Connection]:
        """One read as `authenticated` carrying `claims`: its role, claims and limits go with it in one
        pipeline, which the server runs as one implicit transaction, so a read of one statement costs one
        round trip instead of two (no `BEGIN`, no `COMMIT`). A unit of `work`; a second statement raises
        RuntimeError.

        Read-only (a write fails with 25006): a statement committed as the server answers it may be committed
        after the caller was told 503, when the server held it through a freeze and ran it as it resumed. A
        write keeps its `COMMIT`, which is never sent once the unit has failed (`user_transaction`)."""
        async with _Work(self.pool, None) as conn:
            conn.open_with(*_as_user(self.pool, claims, _AS_READER))
            conn.run_alone()
            try:
                yield conn
            finally:
                conn.unit_ended()

    async def grouped(self, queries: tuple[LiteralString, ...], item: Mapping[str, Any]) -> list[Rows]:
        """`queries` run for `item` as the service, with the items other callers hand the same `queries` in the same
        turn of the event loop: for each query, the rows that answer `item`. Each query takes the items as
        `%(items)s`, a JSON array of the items' objects, each with its place in the group as `n`, and each row it
        returns carries the `n` of the item it answers (a query made for one item at a time can be made for a
        group so: `from jsonb_to_recordset(%(items)s::jsonb) as i(n int, ...)`).

        The queries go in one `service_pipeline` for the group, so a worker's concurrent steps that reach the same
        statements together (they are read in one batch, and go on in step) cost the database one statement and
        one implicit transaction, the round trip and the process one unit of work, instead of one each. An item
        alone goes alone, in its caller's unit (and budget).

        A group commits or fails whole. When the database is unavailable or too busy (`DatabaseUnavailable`,
        `TooManyRequests`), every member raises it, as each would have alone. When it fails otherwise (one
        item's refused: a lost lease, a stale version, a deadlock with another group over rows two items lock;
        nothing of the group committed), each member sends its item again alone, concurrently, and meets its own
        answer."""
        loop = asyncio.get_running_loop()
        group = self._groups.get(queries)
        if group is None:
            group = self._groups[queries] = _Group()
            # After the callers already woken in this turn (a group's members, going on together) have run.
            loop.call_soon(self._send_group, queries, group)
        future: asyncio.Future[Any] = loop.create_future()
        group.items.append(item)
        group.futures.append(future)
        result = await future
        if result is _ALONE:
            async with self.service_pipeline() as conn:
                [alone] = await _run_group(conn, queries, [item])
            return alone
        answer: list[Rows] = result
        return answer

    def _send_group(self, queries: tuple[LiteralString, ...], group: _Group) -> None:
        del self._groups[queries]
        if len(group.futures) == 1:
            if not group.futures[0].done():  # not cancelled meanwhile
                group.futures[0].set_result(_ALONE)
            return
        # In a context of its own: no member's request budget governs the others' statements.
        task = asyncio.get_running_loop().create_task(self._send(queries, group), context=contextvars.Context())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, queries: tuple[LiteralString, ...], group: _Group) -> None:
        """Send `group` in one unit, and answer its members (see `grouped`): each is answered however this ends."""
        try:
            async with self.service_pipeline() as conn:
                answers = await _run_group(conn, queries, group.items)
        except (DatabaseUnavailable, TooManyRequests) as exc:
            for future in group.futures:
                if not future.done():
                    # Each its own error (a raised exception collects its raiser's traceback), with the same cause.
                    error = copy.copy(exc)
                    error.__cause__ = exc.__cause__
                    future.set_exception(error)
        except Exception:  # noqa: S110 - each member meets its own answer alone
            pass
        else:
            # Committed: never sent again. (A member cancelled meanwhile has its future done already.)
            for future, answer in zip(group.futures, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
        finally:
            for future in group.futures:
                if not future.done():
                    future.set_result(_ALONE)

    async def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers a query within the work deadline."""
        async with _Work(self.pool, None) as conn:
            await conn.execute("select 1")

    def spare_connections(self) -> int:
        """Connections the pool could hand out now without anyone waiting: its idle ones and those it may
        still open, less the units already waiting for one."""
        stats = self.pool.get_stats()
        idle = stats.get("pool_available", 0)
        unopened = self.pool.max_size - stats.get("pool_size", 0)
        return idle + unopened - stats.get("requests_waiting", 0)


TransactionSource = Connection | Database | Callable[[], AbstractAsyncContextManager[Connection]]
"""Where batch work takes one transaction per item from: a `Database` (service transactions), a connection
that already acts as the service, or a factory of transactions (an operator script's, which set the
role and a lock timeout)."""


@asynccontextmanager
async def transaction_from(source: TransactionSource) -> AsyncIterator[Connection]:
    """A service transaction from a `Database`; a transaction (a savepoint if one is open) on a connection
    that already acts as the service; or whatever transaction a factory opens."""
    if isinstance(source, Database):
        async with source.service_transaction() as conn:
            yield conn
    elif isinstance(source, psycopg.AsyncConnection):
        async with source.transaction():
            yield source
    else:
        async with source() as conn:
            yield conn


#: `become_service`'s statement, for a unit that sends it with its last statements and its COMMIT in one round
#: trip (`commit_with`) rather than in a round trip of its own.
BECOME_SERVICE: Final[tuple[LiteralString, Mapping[str, Any]]] = (
    "select set_config('role', 'service_role', true)",
    {},
)


#: Sent in a unit's transaction (with its last statements, `commit_with`), its COMMIT answers once Postgres has
#: written the transaction to its WAL buffers, without waiting for the WAL's flush to disk (a few milliseconds
#: on every commit): for a unit on a stream's first byte's path. Every other session sees it at once, as after
#: any COMMIT; only a crash of Postgres itself (not of voicegate) within about three `wal_writer_delay`s (0.6 s
#: by default) may lose it, and the database stays consistent. Only for writes whose loss the system reads as
#: a state it already knows (a stream's row and first reservation, or its end).
UNFLUSHED_COMMIT: Final[tuple[LiteralString, Mapping[str, Any]]] = (
    "select set_config('synchronous_commit', 'off', true)",
    {},
)


async def become_service(conn: Connection) -> None:
    """Switch a user transaction to `service_role` for its remaining statements.

    For use cases that check ownership under the caller's RLS and then write service-only rows in
    the same transaction. SET ROLE is checked against the session user, so this works from any role.
    """
    await conn.execute(*BECOME_SERVICE)


async def commit_with(conn: Connection, *statements: tuple[LiteralString, Mapping[str, Any]]) -> list[Rows]:
    """End a unit's transaction: `statements` and its COMMIT in one round trip (`PooledConnection.commit_with`);
    the rows each returned."""
    if not isinstance(conn, PooledConnection):
        raise TypeError("commit_with ends a unit of work's transaction, on its pooled connection")
    return await conn.commit_with(*statements)


@asynccontextmanager
async def as_service(conn: Connection) -> AsyncIterator[Connection]:
    """`conn`'s user transaction as `service_role` for the block's statements, then the caller's role again: for a
    column the caller may not read (a voiceprint) of a row RLS has just shown them to be theirs."""
    await become_service(conn)
    try:
        yield conn
    finally:
        await conn.execute("select set_config('role', 'authenticated', true)")
