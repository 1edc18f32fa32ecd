"""Users of the embedded auth.users for development: found by email or id, created on first use (what
`voicegate token` and the demo page's dev session sign in as)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from backend.db.queries import load_queries

_Q = load_queries(Path(__file__).with_suffix(".sql"))


def find_or_create_dev_user(conn: psycopg.Connection[Any], email: str) -> tuple[Any, ...]:
    """The (id, email) of the user with `email` (lower-cased), created if there is none; safe when
    several run at once (auth.users has no unique email, as in GoTrue, so it is serialised by a lock)."""
    params = {"email": email.lower()}
    with conn.transaction():
        conn.execute(_Q["lock_dev_user"], params)
        row = conn.execute(_Q["find_dev_user"], params).fetchone()
        if row is None:
            row = conn.execute(_Q["create_dev_user"], params).fetchone()
    assert row is not None  # noqa: S101 - insert ... returning always yields the row
    return tuple(row)


def dev_user_by_id(conn: psycopg.Connection[Any], user_id: str) -> tuple[Any, ...] | None:
    """The (id, email) of the user with this id, or None."""
    row = conn.execute(_Q["dev_user_by_id"], {"id": user_id}).fetchone()
    return None if row is None else tuple(row)
