"""Verbs over a connection with dict rows; an unexpected empty result is loud."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, LiteralString

from backend.db.connection import Connection


class NoResultError(RuntimeError):
    """A query that always returns a row returned none."""


async def fetch_optional(conn: Connection, query: LiteralString, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first row of `query`, or None."""
    cursor = await conn.execute(query, params)
    return await cursor.fetchone()


async def fetch_one(conn: Connection, query: LiteralString, params: Mapping[str, Any]) -> dict[str, Any]:
    """The first row of a query that must return one (INSERT ... RETURNING, a function call)."""
    row = await fetch_optional(conn, query, params)
    if row is None:
        raise NoResultError(f"no row from: {query.splitlines()[0]}")
    return row


async def fetch_all(conn: Connection, query: LiteralString, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every row of `query`."""
    cursor = await conn.execute(query, params)
    return await cursor.fetchall()
