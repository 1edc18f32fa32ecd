"""How long a unit of database work, and a request, may wait on a server that does not answer.

Once a unit has its connection, the server must answer each of the work's statements (and the commit)
within a deadline, `VOICEGATE_DB_TIMEOUT` unless the caller gives another. Past it the connection's socket
is shut down: whatever awaits the connection fails at once, the pool discards it instead of taking it
back, and the work fails with `DatabaseUnavailable`. The socket is cut rather than the task cancelled
because psycopg meets a cancelled query by asking the server to cancel it and waiting up to ten seconds
for the answer, which a hung server never gives. The deadline runs while the server is being waited for.
It does not run while the process is busy with its own work between statements, or has an answer it has
not yet read: a burst that keeps the event loop busy for a second is not an outage of the database.

An HTTP request holds all its units to one budget besides (`request_budget`, `VOICEGATE_DB_TIMEOUT`): the
time it waits on a database that does not answer (for a connection while nobody gets answers, or for the
server's answer) adds up over its units, the Storage stand-in's that it reaches in-process included, and
any answer clears it. Once the request has waited its budget, its next units fail at once instead of each
waiting a deadline of its own (the removal of an object it stored, the release of its Idempotency-Key), so
a request that meets a hung database answers 503 within the one budget, while one the database keeps
answering, however slowly, waits no less than before.
"""

from __future__ import annotations

import asyncio
import math
import os
import select
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar

import psycopg

from backend.db.waiting import ObservedWaits


class RequestBudget:
    """How long one request may still wait on a database that does not answer, over all its units of work."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        #: Seconds waited on the database since it last answered the request.
        self.stalled = 0.0
        #: The task the request runs in: a request reached in-process from it runs in the same task.
        self.task = asyncio.current_task()
        #: Whether the request has ended: a context that still holds the budget afterwards is not its request's.
        self.ended = False

    def left(self) -> float:
        """Seconds the request may still wait without an answer."""
        return self.seconds - self.stalled


_REQUEST_BUDGET: ContextVar[RequestBudget | None] = ContextVar("voicegate_request_budget", default=None)


@contextmanager
def request_budget(seconds: float) -> Iterator[RequestBudget]:
    """Hold the block's units of database work (one request's) to one budget of `seconds` of waiting on a
    database that does not answer (see the module docstring). A request reached in-process from another
    one still under way, in its task (the Storage stand-in's, from an API request), keeps the budget of the
    request it serves.

    Any other budget found in the context is another request's, leaked: asyncio hands a connection's reader
    the context of the task that last resumed reading it (https://github.com/python/cpython/issues/140947),
    and uvicorn resumes reading from the task of the request whose large body paused it, so the next
    requests on that connection start in that request's context. Taken over, an outage's spent budget
    refused every later request on the connection at once, for as long as the client kept it open."""
    current = _REQUEST_BUDGET.get()
    if current is not None and serving_request():
        yield current
        return
    budget = RequestBudget(seconds)
    token = _REQUEST_BUDGET.set(budget)
    try:
        yield budget
    finally:
        budget.ended = True
        _REQUEST_BUDGET.reset(token)


def serving_request() -> bool:
    """Whether this code runs for a request still under way, in its task (one reached in-process from it
    runs so too)."""
    budget = _REQUEST_BUDGET.get()
    return budget is not None and not budget.ended and budget.task is asyncio.current_task()


def current_budget() -> RequestBudget | None:
    """The budget of the request this code runs for, if it runs for one still under way (one that ended is
    no longer anyone's: see `request_budget`)."""
    budget = _REQUEST_BUDGET.get()
    return None if budget is None or budget.ended else budget


class TimedWaits(ObservedWaits):
    """A connection that notes when it waits on the server, for its unit's `Deadline`, and charges each
    wait that ends without an answer to the request's budget. A request that has no budget left does not
    wait at all."""

    #: Since when (the event loop's clock) the connection waits for the server, while it does.
    waiting_since: float | None = None
    #: How long the current wait may last by its request's budget (unbounded outside a request).
    wait_limit: float = math.inf
    #: The budget the current wait is charged to, if it runs for a request.
    _charged: RequestBudget | None = None
    #: The deadline of the unit that holds the connection, while one does.
    watched_by: Deadline | None = None
    #: When (the event loop's clock), on which loop, and by which timer that unit's deadline next looks.
    look_at: float | None = None
    look_loop: asyncio.AbstractEventLoop | None = None
    look_handle: asyncio.TimerHandle | None = None

    def wait_begins(self) -> None:
        """Note when the wait began, and what its request has left (failing it at once if nothing)."""
        budget = self._charged = current_budget()
        self.wait_limit = math.inf if budget is None else budget.left()
        if self.wait_limit <= 0:
            sever(self)  # the wait fails at once, and the pool discards the connection
        self.waiting_since = asyncio.get_running_loop().time()

    def wait_ends(self, *, answered: bool) -> None:
        """Charge a wait that ended without an answer to its request's budget."""
        if not answered and self._charged is not None and self.waiting_since is not None:
            self._charged.stalled += asyncio.get_running_loop().time() - self.waiting_since
        self.waiting_since = self._charged = None


class Deadline:
    """Cuts the unit's connection once the server has kept it waiting `budget` seconds, or what was left of
    its request's budget when the wait began. While the connection does not wait (the process works
    between statements) or its answer has come but is not read yet (the event loop is busy), the server
    is not late, and the deadline looks again later.

    The connection keeps its look-out timer from one unit to the next, and a unit arms one only when none is
    due by its own first look: a look that comes earlier than a unit needs finds the server not late and
    looks again later, so it cuts nothing sooner. A timer per unit would cost a worker four or five heap
    pushes and cancellations per attempt on the event loop's timer heap, each a few comparisons in Python."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn: TimedWaits, budget: float) -> None:
        self._loop, self._conn, self._budget = loop, conn, budget
        self._request = current_budget()
        conn.watched_by = self
        due = loop.time() + self._next_wait()
        if conn.look_at is None or conn.look_at > due or conn.look_loop is not loop:
            _look_at(conn, loop, due)

    def _next_wait(self) -> float:
        """The longest a wait beginning now may last (a request with nothing left fails its waits as they
        begin, so the look after that is the unit's own)."""
        left = math.inf if self._request is None else self._request.left()
        return min(self._budget, left) if left > 0 else self._budget

    def _check(self) -> None:
        now, since = self._loop.time(), self._conn.waiting_since
        if since is None or readable(self._conn):
            due = now + self._next_wait()
        else:
            due = since + min(self._budget, self._conn.wait_limit)
        if due <= now:
            sever(self._conn)
        else:
            _look_at(self._conn, self._loop, due)

    def cancel(self) -> None:
        """Stop watching: the unit is over (the connection's timer, if due, finds no unit and ends)."""
        if self._conn.watched_by is self:
            self._conn.watched_by = None


def _look_at(conn: TimedWaits, loop: asyncio.AbstractEventLoop, due: float) -> None:
    """Have the unit that holds `conn` then look whether its server is late (instead of any look due later)."""
    if conn.look_handle is not None:
        conn.look_handle.cancel()
    conn.look_at, conn.look_loop = due, loop
    conn.look_handle = loop.call_at(due, _look, conn)


def _look(conn: TimedWaits) -> None:
    conn.look_at = conn.look_handle = conn.look_loop = None
    if conn.watched_by is not None:
        conn.watched_by._check()


def readable(conn: psycopg.AsyncConnection[object]) -> bool:
    """Whether the server has sent something the connection has not read yet (or its socket is gone)."""
    try:
        fd = conn.pgconn.socket
    except psycopg.Error:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def sever(conn: psycopg.AsyncConnection[object]) -> None:
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
