"""A reflection's `voice` mirror (and `voice_id`) against its active attempt: finding the ones that drifted,
and rewriting one through the lifecycle (`voicegate.repair_voice_mirror`)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import errors as pg_errors

from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_one
from backend.db.queries import load_queries

_Q = load_queries(Path(__file__).with_suffix(".sql"))


@dataclass(frozen=True)
class MirrorCheck:
    """How one reflection's mirror differs from its active attempt: `drift` names what differs (empty when
    it agrees; `no_active_attempt` when it names a clone with no attempt behind it)."""

    reflection_id: uuid.UUID
    attempt_id: uuid.UUID | None
    status: str | None
    drift: list[str]


@dataclass(frozen=True)
class Repair:
    """What a repair did: `repaired`, `consistent` (republished since the check), `no_active_attempt`, or
    `skipped_locked` (the attempt's row lock was not had in time); `drift` as found under the lock, if read."""

    outcome: str
    drift: list[str] | None


async def count_reflections(conn: Connection) -> int:
    """How many reflections there are."""
    return int((await fetch_one(conn, _Q["count_reflections"], {}))["n"])


async def check_batch(conn: Connection, *, after: uuid.UUID | None, limit: int) -> list[MirrorCheck]:
    """Up to `limit` reflections after `after` (from the first when None), by id, each with its drift."""
    rows = await fetch_all(conn, _Q["mirror_batch"], {"after": after, "limit": limit})
    return [MirrorCheck(row["reflection_id"], row["attempt_id"], row["status"], row["drift"]) for row in rows]


async def repair(conn: Connection, reflection_id: uuid.UUID, *, actor: str, detail: dict[str, Any]) -> Repair:
    """Rewrite the reflection's drifted mirror in a savepoint of the caller's (writable) transaction, audited
    as `actor` with `detail`."""
    try:
        # A savepoint: a row lock not had within the lock timeout skips this reflection, not the batch.
        async with conn.transaction():
            row = await fetch_one(
                conn, _Q["repair"], {"reflection_id": reflection_id, "actor": actor, "detail": json.dumps(detail)}
            )
    except pg_errors.LockNotAvailable:
        return Repair("skipped_locked", None)
    return Repair(row["outcome"], row["drift"])
