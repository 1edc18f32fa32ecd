"""Rows decoded into typed records: the db layer's dict rows, converted and checked by msgspec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, LiteralString, TypeVar

import msgspec

from backend.db.connection import Connection
from backend.db.execute import NoResultError, fetch_all, fetch_optional

R = TypeVar("R")


async def fetch_optional_record(
    conn: Connection, query: LiteralString, params: Mapping[str, Any], record: type[R]
) -> R | None:
    """The first row of `query` as a `record`, or None. A column of the wrong type, or a status outside the
    record's enum (so outside the table's CHECK constraint), raises msgspec.ValidationError."""
    row = await fetch_optional(conn, query, params)
    return None if row is None else msgspec.convert(row, record)


async def fetch_record(conn: Connection, query: LiteralString, params: Mapping[str, Any], record: type[R]) -> R:
    """The first row of a query that must return one (INSERT ... RETURNING, a read by key), as a `record`."""
    found = await fetch_optional_record(conn, query, params, record)
    if found is None:
        raise NoResultError(f"no row from: {query.splitlines()[0]}")
    return found


async def fetch_records(conn: Connection, query: LiteralString, params: Mapping[str, Any], record: type[R]) -> list[R]:
    """Every row of `query`, each as a `record`."""
    return [msgspec.convert(row, record) for row in await fetch_all(conn, query, params)]
