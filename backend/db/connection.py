"""The pooled connection: a transaction's opening travels with its first statement, and its closing with
its `COMMIT`.

A request's time is mostly round trips to the server, so a transaction costs as few as it can: a
transaction's `BEGIN` and its role and claims travel in one pipeline with its first statement, so a
transaction of one query is two round trips (that query, then `COMMIT`); a unit held to one statement
(`backend.db.units.Database.service_statement`) goes alone, committed as it runs, and a unit of statements none of
which waits for another's answer (`service_pipeline`) goes in one pipeline: one round trip either way. A
statement that only has to be in the transaction by its end (`close_with`) goes with the `COMMIT`, and so
can a transaction's last statements whose answers the caller reads after it has committed (`commit_with`). Each
answer is noted, for the outage log and the waits for a connection (a busy database is not a dead one).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, LiteralString

import psycopg
from psycopg import AsyncCursor, AsyncTransaction
from psycopg.abc import Params, Query
from psycopg.pq import TransactionStatus

from backend.db.deadline import TimedWaits, current_budget
from backend.db.prepares import CheckedPrepares

Connection = psycopg.AsyncConnection[dict[str, Any]]
"""The connection every service takes: rows come back as dicts."""

#: Statements a unit sends ahead of its first one, with their parameters.
Opening = tuple[tuple[LiteralString, Mapping[str, Any]], ...]

_OPEN_TRANSACTION = frozenset({TransactionStatus.INTRANS, TransactionStatus.INERROR})


class _PipelineFailedTwice(logging.Filter):
    """Drops psycopg's warning that a pipeline whose block raised could not be ended, because it was aborted or its
    connection was lost (`OperationalError`, `PipelineAborted` among them): psycopg writes it only when the block
    raised, and the block's own error is raised (and answered, or logged once as an outage, where it is met); the
    warning says it again with the pipeline's repr, one line per connection in a database outage."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        failed = len(args) == 2 and isinstance(args[1], psycopg.OperationalError)
        return not (record.msg == "error ignored terminating %r: %s" and failed)


logging.getLogger("psycopg").addFilter(_PipelineFailedTwice())


class _LastAnswer:
    """When (monotonic seconds, `at`) any pooled connection of this process last got an answer: a wait for a
    connection that sees one is a wait on a busy database, not on a dead one. Counted as answers come, and
    over every pool, as all of them talk to the one database: a pool whose units all hold their connections
    for long (the Storage stand-in's, through a burst of uploads) is still busy, not down.

    Kept on an object of its own, not as a class attribute of `PooledConnection`: assigning a class attribute
    invalidates the interpreter's attribute caches for the class, so each answer would make the lookups on
    every connection that follow (psycopg's own, on each statement) miss them."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = -math.inf


_LAST_ANSWER = _LastAnswer()


def last_answer_at() -> float:
    """When (monotonic seconds) any pooled connection of this process last got an answer (`_LastAnswer`)."""
    return _LAST_ANSWER.at


class PooledConnection(TimedWaits):
    """A pooled connection. It is in autocommit mode: the units of work say where their transactions
    begin and end, so that a transaction's opening (`BEGIN` and its settings) can wait and go in one
    pipeline with its first statement instead of costing round trips of its own."""

    #: Statements the unit's first statement takes along (`BEGIN` and its settings), until it is sent.
    _opening: Opening | None = None
    #: Statements to send with the unit's COMMIT, and not at all if it rolls back.
    _closing: Opening | None = None
    #: How many more statements the unit may run, when it is held to a number (`service_statement`: one).
    _statements_left: int | None = None
    #: Whether the unit's transaction was committed already (`commit_with`): its end has nothing to send.
    _committed: bool = False
    #: When (monotonic seconds) the last statement to get its answer since the connection was handed out was
    #: sent: the database answered after that moment.
    answered_sent_at: float | None = None
    #: Whose place among the pool's connections it holds, when the pool shares them by user (`backend.db.shares`).
    share_owner: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # psycopg's own forgets to check what became of a statement it prepares in a pipeline that aborted, and
        # the next unit on the connection, whoever it serves, meets a prepared statement that does not exist.
        self._prepared = CheckedPrepares()

    def open_with(self, *opening: tuple[LiteralString, Mapping[str, Any]]) -> None:
        """Send these statements (`BEGIN`, settings) with the first statement executed, in one pipeline."""
        self._opening = opening or None
        self._closing = None
        self._committed = False

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
        sent = time.monotonic()
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
            self._heard(sent)  # with an error of the statement's own
            raise
        if self._pipeline is None:  # in a pipeline, the answer comes at its end (`pipelined`)
            self._heard(sent)
        return cursor

    @asynccontextmanager
    async def pipelined(self) -> AsyncIterator[None]:
        """The unit's statements, its opening first, in one pipeline that the server runs as one implicit
        transaction, committed at the pipeline's end (the connection is in autocommit mode). If the block
        raises, the connection is closed before the pipeline's end is sent, so the server rolls back; the
        block's error is raised, not psycopg's about ending a pipeline on a closed connection (which it
        would log as a warning beside the block's error, once per failed unit of an outage)."""
        failed: BaseException | None = None
        sent = time.monotonic()
        try:
            async with self.pipeline():
                await self._send_opening()
                try:
                    yield
                except BaseException as exc:
                    failed = exc
                    await self.close()
        except psycopg.OperationalError:
            if failed is None:
                raise
        if failed is not None:
            raise failed
        self._heard(sent)

    def _heard(self, sent: float) -> None:
        """An answer came to what was sent at `sent` (monotonic seconds)."""
        self.answered_sent_at = sent
        _LAST_ANSWER.at = time.monotonic()
        budget = current_budget()
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

    def close_with(self, statement: LiteralString, params: Mapping[str, Any]) -> None:
        """Send `statement` with the unit's COMMIT, in one pipeline: for a write that must commit with the
        transaction but need not come before anything else in it. A failure fails the COMMIT."""
        self._closing = (*(self._closing or ()), (statement, params))

    async def commit_with(self, *statements: tuple[LiteralString, Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
        """Run `statements`, then the unit's closing ones and its COMMIT, in one pipeline: one round trip; the
        rows each statement returned. For a transaction's last statements when one of them takes a lock held
        until the transaction ends (a user's spending counter): it is held for the server's time alone, not
        also for the answer's way back and the COMMIT's way there. The unit's end then has nothing to send."""
        closing, self._closing = self._closing or (), None
        sent = time.monotonic()
        cursors = []
        async with self.pipeline():
            await self._send_opening()
            for statement, params in (*statements, *closing):
                cursors.append(await super().execute(statement, params))
            await super().execute("commit")
        self._heard(sent)
        self._committed = True
        return [await cursor.fetchall() if cursor.description else [] for cursor in cursors[: len(statements)]]

    def unit_ended(self) -> None:
        """Forget what the unit that held the connection asked of it (its opening, its statement count)."""
        self._opening = self._statements_left = None

    async def end(self, *, commit: bool) -> None:
        """Commit (or roll back) the unit's transaction, with its closing statements; nothing to send if it
        ran no statement and has none to close with."""
        closing, self._closing = self._closing, None
        if self._committed:
            self._committed = False
            return
        sent = time.monotonic()
        if commit and closing is not None:
            async with self.pipeline():
                await self._send_opening()
                for statement, params in closing:
                    await super().execute(statement, params)
                await super().execute("commit")
            self._heard(sent)
            return
        if self._opening is not None:
            self._opening = None
            return
        if commit:
            await super().execute("commit")
            self._heard(sent)
        elif not self.broken and self.pgconn.transaction_status in _OPEN_TRANSACTION:
            await super().execute("rollback")
