"""Stale attempts: open attempts that no worker will pick up again, requeued or failed with a reason.

An attempt is stale when its lease expired and nothing will redeliver it (no message left, or expired
longer than `stale_after`), or when it sits `queued` past `stale_after` with no message in
`voice_clone_process`. A live lease is never touched: recovery goes by lease, not by age.

`requeue_stale_attempts` is what `voicegate ops recover-stale-attempts` runs batch by batch and what
the worker's maintenance sweep calls; the change itself (transition, message, audit event) is one SQL
function, `voicegate.recover_attempt`, so it commits as one and re-checks the attempt under its lock.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import msgspec
from psycopg import errors as pg_errors

from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_one
from backend.db.queries import load_queries
from backend.domain.attempts import OPEN_STATUSES

_Q = load_queries(Path(__file__).with_suffix(".sql"))

Action = Literal["requeue", "fail"]

# What the user sees in the mirror's `lastError` (safe text: no lease owners, no internals).
MESSAGES: dict[str, str] = {
    "lease_expired": "Processing was interrupted; the clone was queued again.",
    "queued_without_message": "The clone was waiting without being scheduled; it was queued again.",
    "stale_attempt": "The clone stopped making progress and was given up; retry it.",
    "retries_exhausted": "The clone was interrupted too many times and was given up; retry it.",
}


class StaleAttempt(msgspec.Struct, kw_only=True):
    """One stale attempt, what recovery does with it and, once applied, what happened.

    `outcome` is None in a dry run; otherwise one of `requeued`, `failed`, `skipped_locked`,
    `skipped_changed`, `skipped_live_lease`, `skipped_not_open` (see `voicegate.recover_attempt`).
    """

    attempt_id: uuid.UUID
    reflection_id: uuid.UUID | None
    status: str
    version: int
    reason: str
    action: Action
    code: str
    retry_count: int
    max_retries: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    updated_at: datetime
    has_message: bool
    outcome: str | None = None
    msg_id: int | None = None


def plan(row: dict[str, Any], *, fail: bool) -> StaleAttempt:
    """Decide what to do with one stale row: requeue, or fail when asked to or out of retries."""
    out_of_retries = row["status"] != "queued" and row["retry_count"] >= row["max_retries"]
    action: Action = "fail" if fail or out_of_retries else "requeue"
    if action == "requeue":
        code = row["reason"]
    else:
        code = "retries_exhausted" if out_of_retries and not fail else "stale_attempt"
    return StaleAttempt(**row, action=action, code=code)


async def find_stale_attempts(
    conn: Connection,
    *,
    stale_after: timedelta,
    limit: int,
    after: uuid.UUID | None = None,
    fail: bool = False,
) -> list[StaleAttempt]:
    """Up to `limit` stale attempts with ids greater than `after`, in id order, each with its plan.

    Reads only (no locks): the plan is re-checked under the attempt's lock when it is applied.
    """
    params = {"stale_after": stale_after, "limit": limit, "after": after, "open": sorted(OPEN_STATUSES)}
    rows = await fetch_all(conn, _Q["stale_attempts"], params)
    return [plan(row, fail=fail) for row in rows]


async def recover(conn: Connection, attempt: StaleAttempt, *, actor: str, detail: dict[str, Any]) -> StaleAttempt:
    """Apply one plan: the transition, the message (requeue) and the audit event commit together.

    Runs in a savepoint, so a row lock that cannot be had within the caller's `lock_timeout` (a
    reflection or voice row another transaction is writing) skips this attempt, not the batch.
    """
    try:
        async with conn.transaction():
            row = await fetch_one(
                conn,
                _Q["recover_attempt"],
                {
                    "attempt_id": attempt.attempt_id,
                    "version": attempt.version,
                    "actor": actor,
                    "action": attempt.action,
                    "code": attempt.code,
                    "message": MESSAGES[attempt.code],
                    "detail": json.dumps({**detail, "reason": attempt.reason}),
                },
            )
    except pg_errors.LockNotAvailable:
        return msgspec.structs.replace(attempt, outcome="skipped_locked")
    return msgspec.structs.replace(attempt, outcome=row["outcome"], msg_id=row["msg_id"])


async def requeue_stale_attempts(
    conn: Connection,
    *,
    stale_after: timedelta,
    limit: int,
    actor: str,
    apply: bool,
    fail: bool = False,
    after: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> list[StaleAttempt]:
    """Find one batch of stale attempts (at most `limit`, ids after `after`) and, with `apply`,
    requeue them (or fail them: `fail`, or an expired lease with no retries left).

    `conn` must act as the service (a `service_transaction`, or the database owner). With `apply`,
    the batch runs in one transaction on `conn` (a savepoint when the caller already opened one);
    each attempt is re-checked under its row lock, so a concurrent worker or a second recovery run
    makes it `skipped_*`, never a double requeue. Returns every attempt found, with its outcome when
    applied. Pass the last returned `attempt_id` as `after` to continue; a short batch is the last.
    """
    async with conn.transaction():
        found = await find_stale_attempts(conn, stale_after=stale_after, limit=limit, after=after, fail=fail)
        if not apply:
            return found
        return [await recover(conn, attempt, actor=actor, detail=detail or {}) for attempt in found]
