"""Users of the embedded auth.users for development: found by email or id, created on first use (what
`voicegate token` and the demo page's dev session sign in as)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg.rows import tuple_row

from backend.db.queries import load_queries

_Q = load_queries(Path(__file__).with_suffix(".sql"))
DevUser = tuple[uuid.UUID, str]
#: The one local user of development: the demo page signs in as it, `voicegate token` mints for it by
#: default, and the README's curl and the API docs name it, so work done either way shows in the other.
DEV_USER_EMAIL: Final = "you@voicegate.local"


async def find_or_create_dev_user(conn: psycopg.AsyncConnection[Any], email: str) -> DevUser:
    """The (id, email) of the user with `email` (lower-cased), created if there is none; safe when
    several run at once (auth.users has no unique email, as in GoTrue, so it is serialised by a lock)."""
    params = {"email": email.lower()}
    async with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(_Q["lock_dev_user"], params)
        row = await (await cur.execute(_Q["find_dev_user"], params)).fetchone()
        if row is None:
            row = await (await cur.execute(_Q["create_dev_user"], params)).fetchone()
    assert row is not None  # noqa: S101 - insert ... returning always yields the row
    return row[0], row[1]


async def dev_user_by_id(conn: psycopg.AsyncConnection[Any], user_id: uuid.UUID) -> DevUser | None:
    """The (id, email) of the user with this id, or None."""
    async with conn.cursor(row_factory=tuple_row) as cur:
        row = await (await cur.execute(_Q["dev_user_by_id"], {"id": user_id})).fetchone()
    return None if row is None else (row[0], row[1])


async def has_auth_stand_in(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether the database's `auth.users` is voicegate's stand-in (where `voicegate token` may make users), not
    Supabase Auth's."""
    async with conn.cursor() as cur:
        row = await (await cur.execute(_Q["auth_stand_in"])).fetchone()
    return bool(row and row[0])
