"""Retention: every table that grows with use keeps its rows for a bound an operator sets (docs/operations.md,
"Retention"), and the worker's maintenance sweep removes what is past it with `prune`.

A batch is one short transaction that deletes at most `Retention.batch` rows by id, oldest first; rows a request
may hold locked are passed by, never waited for, and the rows removed are ones no request writes any more
(archived messages, finished streams and jobs, events of finished attempts), so no request waits on the sweep
for longer than one batch's commit. `prune` goes on table by table while batches come back full, until its
deadline: at the next sweep it carries on where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import LiteralString

import msgspec

from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_one
from backend.db.queries import load_queries
from backend.domain.limits import Retention

_Q = load_queries(Path(__file__).with_suffix(".sql"))

#: Seconds in a day, the unit of every retention setting.
DAY = 86_400.0


class TableSize(msgspec.Struct, frozen=True):
    """One growing table as `voicegate ops status` shows it."""

    name: str
    estimated_rows: int | None
    total_bytes: int
    dead_rows: int
    oldest: datetime | None


#: The tables (or, for the archives, the kind of table) each setting bounds, and the query that prunes them.
_BOUNDS: tuple[tuple[str, str, LiteralString], ...] = (
    ("voicegate.queue_message_errors", "queue_archive_days", "prune_queue_message_errors"),
    ("voicegate.audit_events", "audit_days", "prune_audit_events"),
    ("public.voice_clone_attempt_events", "attempt_history_days", "prune_attempt_events"),
    ("public.voice_clone_outbox", "attempt_history_days", "prune_legacy_outbox"),
    ("public.speech_streams", "speech_days", "prune_speech_streams"),
    ("public.reflection_sessions", "speech_days", "prune_reflection_sessions"),
    ("public.synthesis_jobs", "job_days", "prune_synthesis_jobs"),
    ("voicegate.usage_events", "usage_days", "prune_usage_events"),
)

Transactions = Callable[[], AbstractAsyncContextManager[Connection]]


def _keep(days: float) -> timedelta | None:
    return timedelta(seconds=days * DAY) if days > 0 else None


async def prune(
    transaction: Transactions, retention: Retention, *, queues: Sequence[str], deadline: float
) -> dict[str, int]:
    """Remove what is past its bound, in the archives of `queues` (voicegate's own: a queue another application
    made on the same database is its business) and the other growing tables, a batch per transaction from
    `transaction`, until nothing is or `time.monotonic()` reaches `deadline`; the rows removed per table (tables
    with none left out). Idempotent, and safe beside another sweep: two batches may pick the same rows, and the
    second finds them gone."""
    removed: dict[str, int] = {}
    steps: list[tuple[str, LiteralString, dict[str, object]]] = []
    archive_keep = _keep(retention.queue_archive_days)
    if archive_keep is not None:
        steps += [
            (f"pgmq.a_{queue}", _Q["prune_queue_archive"], {"queue": queue, "keep": archive_keep}) for queue in queues
        ]
    for table, setting, query in _BOUNDS:
        keep = _keep(getattr(retention, setting))
        if keep is not None:
            steps.append((table, _Q[query], {"keep": keep}))
    steps.append(("voicegate.idempotency_keys", _Q["prune_idempotency_keys"], {}))
    for table, query, params in steps:
        while time.monotonic() < deadline:
            async with transaction() as conn:
                row = await fetch_one(conn, query, {**params, "limit": retention.batch})
            count = int(row["removed"])
            if count:
                removed[table] = removed.get(table, 0) + count
            if count < retention.batch:
                break
    return removed


async def table_sizes(conn: Connection) -> list[TableSize]:
    """Rows (estimated), bytes, dead rows and oldest row of every table that grows with use."""
    return [TableSize(**row) for row in await fetch_all(conn, _Q["table_sizes"], {})]
