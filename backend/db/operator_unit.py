"""The operator scripts' unit of work: a short transaction on the script's own connection, as the service,
read-only unless it writes, and never waiting long for a row lock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from backend.db.connection import Connection
from backend.db.execute import fetch_one
from backend.db.queries import load_queries
from backend.db.units import become_service

_Q = load_queries(Path(__file__).with_suffix(".sql"))


@asynccontextmanager
async def operator_transaction(conn: Connection, *, write: bool, lock_timeout: str) -> AsyncIterator[Connection]:
    """A transaction on the autocommit `conn` as the service, read-only unless `write`, waiting at most
    `lock_timeout` (a Postgres duration) for a row lock."""
    async with conn.transaction():
        if not write:
            await conn.execute(_Q["read_only"])
        # Every script transaction acts as the service, as the API's service transactions do.
        await become_service(conn)
        await conn.execute(_Q["lock_timeout"], {"lock_timeout": lock_timeout})
        yield conn


async def database_now(conn: Connection) -> datetime:
    """The database's clock (leases and expiries are measured by it)."""
    row = await fetch_one(conn, _Q["database_now"], {})
    now: datetime = row["now"]
    return now
