"""`voicegate.user_creates`: what each user has created lately, one token bucket per user and kind of create
(VOICEGATE_USER_CREATES, refilled as many per VOICEGATE_USER_CREATE_WINDOW), and the lock that orders one
user's creates of one kind.

A create takes its token on the transaction that writes what it creates, as the service, before it counts or
writes anything: the take row-locks the bucket until that transaction ends, so the user's next create of the
same kind, from this process or any other, waits for it, and then counts what it committed. So a cap counted
after `take` (open consents, draft voices, webhook endpoints) holds under any concurrency, and a refused create
(its transaction rolled back) spends no token. Other users' creates never wait for it. A create that has waited
0.8 s (the take's lock timeout, under the default database deadline) is refused as one of too many at once, to
be retried a second later, rather than cut at the deadline as if the database were down.
"""

from __future__ import annotations

import enum
import math
import uuid
from pathlib import Path

from psycopg.errors import LockNotAvailable

from backend.db.connection import Connection
from backend.db.execute import fetch_one
from backend.db.queries import load_queries
from backend.domain.limits import UserLimits
from backend.errors import CreatesLimited

_Q = load_queries(Path(__file__).with_suffix(".sql"))


class CreateKind(enum.StrEnum):
    """What a bucket counts: `voicegate.user_creates.kind`, exactly its CHECK constraint's values."""

    CONSENT = "consent"
    REFLECTION = "reflection"
    VOICE = "voice"
    WEBHOOK_ENDPOINT = "webhook_endpoint"


#: How a refusal names each kind, to its user.
_NAMES = {
    CreateKind.CONSENT: "spoken consents",
    CreateKind.REFLECTION: "reflections",
    CreateKind.VOICE: "voices",
    CreateKind.WEBHOOK_ENDPOINT: "webhook endpoints",
}


async def take(conn: Connection, owner_id: uuid.UUID, kind: CreateKind, limits: UserLimits) -> None:
    """Count one of `owner_id`'s creates of `kind` on `conn`'s transaction (as the service), holding their lock on
    that kind until it ends; CreatesLimited, with the seconds until one is back, when none is left, and with one
    second when the user's creates of that kind already queue for longer than the take's lock timeout."""
    try:
        row = await fetch_one(
            conn,
            _Q["take"],
            {"owner_id": owner_id, "kind": kind, "creates": limits.creates, "window_seconds": limits.window_seconds},
        )
    except LockNotAvailable:
        raise CreatesLimited(
            f"Too many of your {_NAMES[kind]} are being created at once; retry in 1 s.", retry_after=1
        ) from None
    if row["wait"] is None:
        return
    wait = max(1, math.ceil(row["wait"]))
    raise CreatesLimited(
        f"You have created too many {_NAMES[kind]} lately (this server allows {limits.creates} per "
        f"{limits.window_seconds:g} s); the next may be created in {wait} s.",
        retry_after=wait,
    )
