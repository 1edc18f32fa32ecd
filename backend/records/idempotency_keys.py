"""`voicegate.idempotency_keys`: one user's claim on one Idempotency-Key of one route, from claimed
`in_flight` to `completed` with its response, or released (the rules are `backend.http.idempotency`'s)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from backend.db.connection import Connection
from backend.db.execute import fetch_optional
from backend.db.queries import load_queries

_Q = load_queries(Path(__file__).with_suffix(".sql"))


@dataclass(frozen=True)
class HeldKey:
    """A key as one request holds it: whose, on which route, and the token of its claim."""

    owner_id: uuid.UUID
    route: str
    key: str
    claim_token: uuid.UUID

    def params(self, **extra: object) -> dict[str, object]:
        """The key's query parameters, with `extra`."""
        return {
            "owner_id": self.owner_id,
            "route": self.route,
            "key": self.key,
            "claim_token": self.claim_token,
        } | extra


async def purge_owner_expired(conn: Connection, owner_id: uuid.UUID) -> None:
    """Forget the owner's expired keys (which frees an expired key for a new claim)."""
    await conn.execute(_Q["purge_owner_expired"], {"owner_id": owner_id})


async def claim(conn: Connection, held: HeldKey, *, fingerprint: str, ttl: timedelta, resource_id: uuid.UUID) -> bool:
    """Claim the key `in_flight`; False when somebody holds it (or held it: see `existing`)."""
    params = held.params(fingerprint=fingerprint, ttl=ttl, resource_id=resource_id)
    return await fetch_optional(conn, _Q["claim"], params) is not None


async def existing(conn: Connection, held: HeldKey, *, lease: timedelta) -> dict[str, Any] | None:
    """The key's row as another claim left it, locked (`abandoned`: in flight past `lease`); None if it is gone."""
    return await fetch_optional(conn, _Q["existing"], held.params(lease=lease))


async def reclaim(conn: Connection, held: HeldKey, *, fingerprint: str, ttl: timedelta, resource_id: uuid.UUID) -> None:
    """Take over the key's `in_flight` claim for `held`."""
    await conn.execute(_Q["reclaim"], held.params(fingerprint=fingerprint, ttl=ttl, resource_id=resource_id))


async def complete(conn: Connection, held: HeldKey, *, status: int, body: str) -> bool:
    """Mark the key `completed` with its response; False when `held`'s claim is no longer the key's."""
    return await fetch_optional(conn, _Q["complete"], held.params(status=status, body=body)) is not None


async def release(conn: Connection, held: HeldKey) -> None:
    """Delete `held`'s claim unless it was completed (or taken over)."""
    await conn.execute(_Q["release"], held.params())
