"""Erasures as an operator sees them: who a name or address stands for, what an erasure would take, starting one
(by deleting the user as Supabase Auth does), and the erasures with their state, items and receipts."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_one, fetch_optional
from backend.db.queries import load_queries

_Q = load_queries(Path(__file__).with_suffix(".sql"))


class Subject(msgspec.Struct, frozen=True, kw_only=True):
    """A user an operator named: their id, whether their auth.users row is still there, and its address."""

    user_id: uuid.UUID
    present: bool
    email: str | None


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """One thing outside Postgres an erasure deletes."""

    kind: str
    target: str
    ref: str
    region: str | None


class ErasureRow(msgspec.Struct, frozen=True, kw_only=True):
    """An erasure in a listing: its state and how many of its items are pending or refused."""

    id: uuid.UUID
    user_id: uuid.UUID
    requested_by: str
    state: str
    requested_at: datetime
    finished_at: datetime | None
    items: int
    pending: int
    refused: int


class ErasureItem(msgspec.Struct, frozen=True, kw_only=True):
    """One item of an erasure, as far as it went."""

    id: int
    kind: str
    target: str
    ref: str
    region: str | None
    state: str
    tries: int
    last_error: str | None
    done_at: datetime | None


class Erasure(msgspec.Struct, frozen=True, kw_only=True):
    """One erasure: its state, the rows the cascade and the step erased, its receipt once finished, its items."""

    id: uuid.UUID
    user_id: uuid.UUID
    requested_by: str
    state: str
    requested_at: datetime
    finished_at: datetime | None
    cascaded: dict[str, Any]
    rows_erased: dict[str, Any] | None
    receipt: dict[str, Any] | None
    items: list[ErasureItem]


async def subjects(conn: Connection, who: str) -> list[Subject]:
    """The users `who` (an id or an e-mail address) names: present ones, or an erased one by its id."""
    return [Subject(**row) for row in await fetch_all(conn, _Q["subject"], {"who": who})]


async def targets(conn: Connection, user_id: uuid.UUID) -> list[Target]:
    """What erasing the user would delete outside Postgres."""
    return [Target(**row) for row in await fetch_all(conn, _Q["targets"], {"user_id": user_id})]


async def erase(conn: Connection, user_id: uuid.UUID, actor: str) -> uuid.UUID | None:
    """Delete the user's auth.users row on the caller's transaction, recording `actor` as who asked, their voices
    locked first (`hold_voices`); the erasure it started (or the one of an earlier erasure); None when there is no
    such user."""
    await conn.execute(_Q["hold_voices"], {"user_id": user_id})
    row = await fetch_one(conn, _Q["erase"], {"user_id": user_id, "actor": actor})
    erasure_id: uuid.UUID | None = row["erasure_id"]
    return erasure_id


async def erasure_of(conn: Connection, user_id: uuid.UUID) -> uuid.UUID | None:
    """The erasure of the user, if there is one."""
    row = await fetch_optional(conn, _Q["by_user"], {"user_id": user_id})
    return None if row is None else row["id"]


async def erasures(
    conn: Connection, *, state: str | None, before: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[ErasureRow]:
    """Up to `limit` erasures, newest first, after `before` (the last one's `requested_at` and id)."""
    params = {
        "state": state,
        "before_at": before[0] if before else None,
        "before_id": before[1] if before else None,
        "limit": limit,
    }
    return [ErasureRow(**row) for row in await fetch_all(conn, _Q["erasures"], params)]


async def erasure(conn: Connection, erasure_or_user: uuid.UUID) -> Erasure | None:
    """One erasure, by its id or its user's, with its items."""
    row = await fetch_optional(conn, _Q["erasure"], {"id": erasure_or_user})
    if row is None:
        return None
    items = [ErasureItem(**item) for item in await fetch_all(conn, _Q["items"], {"id": row["id"]})]
    return Erasure(**row, items=items)
