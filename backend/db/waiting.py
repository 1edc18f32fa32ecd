"""The one place voicegate reaches into psycopg's internals: `AsyncConnection.wait`, through which psycopg
consumes every exchange with the server of an established connection (each statement, a pipeline's sync,
`COMMIT` and `ROLLBACK`, a transaction block's end, COPY, a server-side cursor's fetch).

The units of database work need to know when a connection waits on the server, and only then: their
deadline (`backend.db.deadline`) must run while the server keeps the connection waiting and not while the
process is busy between statements, and a request's budget is charged what its waits cost. psycopg offers
no public hook for that: a task cancelled mid-query is met with a cancel request to the server and a
bounded re-wait (psycopg/psycopg#1371, fixed by #1411 with two waits of five seconds each), which is no
prompt deadline on a hung server, and a client-side query timeout is not among its options. Wrapping the
public methods instead (`execute`, cursors, pipelines, transaction blocks, `commit`) would be a dozen
entry points, and one missed would leave a hung server unbounded. `wait` is that single funnel:
https://github.com/psycopg/psycopg/blob/3.3.9/psycopg/psycopg/connection_async.py (`AsyncConnection.wait`).

It is not documented API, so tests/integration/test_psycopg_wait_hook.py pins what this relies on for the
locked psycopg: the method's signature, and that each exchange the units make passes through it. A psycopg
that changes either fails that test before it can silently unbound the deadline.
"""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
from psycopg.abc import PQGen

_T = TypeVar("_T")


class ObservedWaits(psycopg.AsyncConnection[dict[str, Any]]):
    """A connection told as each of its waits on the server begins and ends (subclasses time them)."""

    def wait_begins(self) -> None:
        """Called as a wait on the server begins."""

    def wait_ends(self, *, answered: bool) -> None:
        """Called as the wait ends: with the server's answer, or (`answered` False) with an error."""

    async def wait(self, gen: PQGen[_T], *args: Any, **kwargs: Any) -> _T:
        """psycopg's wait on the server, between `wait_begins` and `wait_ends`."""
        self.wait_begins()
        answered = False
        try:
            result = await super().wait(gen, *args, **kwargs)
            answered = True
            return result
        finally:
            self.wait_ends(answered=answered)
