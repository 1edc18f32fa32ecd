"""Audit events (`voicegate.audit_events`), written through `voicegate.record_audit` on the caller's
connection, so an event commits, or rolls back, with the change it records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from backend.db.connection import Connection
from backend.db.execute import fetch_one
from backend.db.queries import load_queries

_Q = load_queries(Path(__file__).with_suffix(".sql"))


async def record_audit(
    conn: Connection, actor: str, action: str, subject_type: str, subject_id: object, *, detail: dict[str, Any]
) -> None:
    """Record that `actor` did `action` to the subject (`subject_id` as text), with `detail` as JSON (which
    may hold what msgspec encodes: UUIDs, datetimes)."""
    params = {
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": str(subject_id),
        "detail": msgspec.json.encode(detail).decode(),
    }
    await fetch_one(conn, _Q["record_audit"], params)
