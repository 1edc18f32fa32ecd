"""What a connection knows of its prepared statements, kept true when a pipeline aborts.

psycopg prepares a statement the fifth time it runs (`prepare_threshold`), and from then on names it. In pipeline
mode the `Parse` that prepares it is queued with the statements before it, and psycopg records the name as
prepared when it queues it, checking the answer only for a statement it sees for the first time. When an earlier
statement of the pipeline fails (a removed user's account check in a unit's opening, an owner check, a
constraint, a statement timeout), the server skips the rest of the pipeline, the `Parse` among it, and psycopg
still believes the statement prepared: every later unit on that pooled connection that runs it fails with
`prepared statement "_pg3_N" does not exist`, whoever its caller (psycopg 3.3.9, and its main branch as of
2026-07). Here every statement queued to be prepared has its answer checked: one skipped by an aborted pipeline
is forgotten, to be prepared again; one whose `Parse` ran but whose execution failed stays known, since the
server keeps a prepared statement whatever becomes of the statement or its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import pq
from psycopg._preparing import Key, Prepare, PrepareManager
from psycopg._queries import PostgresQuery
from psycopg.pq.abc import PGresult

_FAILED = pq.ExecStatus.FATAL_ERROR


class CheckedPrepares(PrepareManager):
    """psycopg's `PrepareManager`, checking the answer of every statement it prepares (see the module docstring)."""

    def maybe_add_to_cache(self, query: PostgresQuery, prep: Prepare, name: bytes) -> Key | None:
        """psycopg's, and the key of a statement it now prepares, so that `validate` sees what became of it."""
        key = super().maybe_add_to_cache(query, prep, name)
        if key is None and prep is Prepare.SHOULD:
            return self.key(query)
        return key

    def validate(self, key: Key, prep: Prepare, name: bytes, results: Sequence[PGresult]) -> None:
        """psycopg's, except that a statement whose `Parse` succeeded and whose execution failed stays prepared
        (its `Parse` would have failed first, and its execution been skipped, had the statement been bad)."""
        if prep is Prepare.SHOULD and len(results) == 1 and results[0].status == _FAILED:
            self._rotate()
            return
        super().validate(key, prep, name, results)
