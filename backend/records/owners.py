"""The caller's account, checked by the service acting for them (`voicegate.require_owner`).

A user's own units of work check it in their opening; the service's do not, and a statement the service runs for
the caller that writes nothing (a delete that finds no row of a removed user's, the cascade took them) would
answer 404 where the caller is owed a 401. Such a unit sends this first, in the same pipeline as its statement.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from backend.db.connection import Connection
from backend.db.queries import load_queries

_Q = load_queries(Path(__file__).with_suffix(".sql"))


async def require_owner(conn: Connection, owner_id: uuid.UUID) -> None:
    """Queue the check of `owner_id`'s account on `conn` (as the service): VG401, a 401, when it is gone."""
    await conn.execute(_Q["require_owner"], {"owner_id": owner_id})
