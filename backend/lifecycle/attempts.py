"""An attempt as the workers see it, and the few service-side moves they make on it.

Every state change goes through `voicegate.transition_attempt` (version- and lease-fenced); this module
only reads rows, calls that function, extends leases and enqueues follow-up work on the caller's
connection, so a transition and the message it implies commit together.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from backend.db.execute import fetch_one, fetch_optional
from backend.db.pool import Connection
from backend.db.queries import load_queries
from backend.errors import NotFound

Q = load_queries(Path(__file__).with_suffix(".sql"))

CLONE_QUEUE = "voice_clone_process"
PREVIEW_QUEUE = "voice_preview"
OPEN_STATUSES = frozenset({"queued", "processing", "verifying"})


class AttemptRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row of `voice_clone_attempts` (every column the workers use)."""

    id: uuid.UUID
    voice_id: uuid.UUID
    reflection_id: uuid.UUID | None
    sample_id: uuid.UUID | None
    owner_id: uuid.UUID
    provider: str
    source: str
    status: str
    runtime_status: str
    preview_required: bool
    preview_status: str
    retry_count: int
    max_retries: int
    next_retry_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    enrolment_key: str
    provider_voice_id: str | None
    provider_target_model: str | None
    provider_request_id: str | None
    provider_metadata: dict[str, Any]
    last_error_code: str | None
    last_error_message: str | None
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    def leased_to(self, owner: str, now: datetime) -> bool:
        """True when `owner` holds an unexpired lease."""
        return self.lease_owner == owner and self.lease_expires_at is not None and self.lease_expires_at > now

    def lease_expired(self, now: datetime) -> bool:
        """True when nobody holds a live lease."""
        return self.lease_expires_at is None or self.lease_expires_at <= now


def _row(row: dict[str, Any]) -> AttemptRow:
    return msgspec.convert(row, AttemptRow, from_attributes=False, strict=False)


async def load(conn: Connection, attempt_id: uuid.UUID) -> tuple[AttemptRow, datetime]:
    """The attempt as committed now, with the database's clock (leases expire by that clock).

    NotFound when the attempt does not exist.
    """
    row = await fetch_optional(conn, Q["load_attempt"], {"attempt_id": attempt_id})
    if row is None:
        raise NotFound(f"attempt {attempt_id} not found")
    observed_at: datetime = row["observed_at"]
    return _row(row), observed_at


async def transition(
    conn: Connection,
    attempt: AttemptRow,
    actor: str,
    *,
    status: str | None = None,
    runtime: str | None = None,
    preview: str | None = None,
    lease_owner: str | None = None,
    changes: dict[str, Any] | None = None,
) -> AttemptRow:
    """Apply one move through the SQL transition function, fenced by `attempt.version` (and the lease
    when `lease_owner` is given); StaleVersion, LeaseLost or IllegalTransition otherwise."""
    row = await fetch_one(
        conn,
        Q["transition"],
        {
            "attempt_id": attempt.id,
            "version": attempt.version,
            "actor": actor,
            "status": status,
            "runtime_status": runtime,
            "preview_status": preview,
            "lease_owner": lease_owner,
            "changes": json.dumps(changes or {}, default=str),
        },
    )
    return _row(row)


async def extend_lease(conn: Connection, attempt_id: uuid.UUID, lease_owner: str, seconds: int) -> datetime:
    """Push a held lease's expiry `seconds` into the future (LeaseLost when it is no longer held)."""
    row = await fetch_one(
        conn, Q["extend_lease"], {"attempt_id": attempt_id, "lease_owner": lease_owner, "seconds": seconds}
    )
    expires: datetime = row["expires_at"]
    return expires


async def enqueue(conn: Connection, queue: str, message: dict[str, Any], delay_seconds: int = 0) -> int:
    """`pgmq.send` on the caller's transaction, so the message exists exactly when the write commits."""
    row = await fetch_one(
        conn, Q["enqueue"], {"queue": queue, "message": json.dumps(message, default=str), "delay": delay_seconds}
    )
    msg_id: int = row["msg_id"]
    return msg_id


def clone_message(attempt: AttemptRow) -> dict[str, Any]:
    """The `VOICE_CLONE_PROCESS` message for an attempt (same shape as the insert trigger's)."""
    return {
        "type": "VOICE_CLONE_PROCESS",
        "attemptId": str(attempt.id),
        "reflectionId": str(attempt.reflection_id) if attempt.reflection_id else None,
        "version": attempt.version,
    }


def preview_message(attempt: AttemptRow) -> dict[str, Any]:
    """The `VOICE_PREVIEW` message asking for an attempt's preview."""
    return {"type": "VOICE_PREVIEW", "attemptId": str(attempt.id), "version": attempt.version}
