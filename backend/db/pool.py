"""The async connection pool and the two kinds of transaction voicegate runs.

User-facing work runs as `authenticated` with the caller's JWT claims, exactly as PostgREST does, so
RLS decides what a request sees. Service work (consumers, internal routes, scripts) runs as
`service_role`. Either way, a database that cannot be reached becomes `DatabaseUnavailable` (a 503),
and the lifecycle's own SQLSTATEs become the matching domain errors.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from backend.errors import (
    ClientError,
    DatabaseUnavailable,
    Forbidden,
    IllegalTransition,
    LeaseLost,
    NotFound,
    StaleVersion,
    VoicegateError,
)
from backend.settings import Settings

Connection = psycopg.AsyncConnection[dict[str, Any]]
Pool = AsyncConnectionPool[Connection]

Recorder = Callable[[Connection, Any], Awaitable[None]]
"""A hook a service calls with its open transaction and its result, just before that transaction commits
(an Idempotency-Key's record of the response, so the key and the write commit together). It may switch
the transaction to `service_role`, so a service calls it last."""

# SQLSTATEs raised by the lifecycle functions (supabase/migrations/*_attempt_lifecycle.sql).
_SQLSTATE_ERRORS: dict[str, type[VoicegateError]] = {
    "VG400": ClientError,
    "VG403": Forbidden,
    "VG404": NotFound,
    "VG409": StaleVersion,
    "VG422": IllegalTransition,
    "VG423": LeaseLost,
}


def create_pool(dsn: str, settings: Settings) -> Pool:
    """A pool that is opened by the caller (`await pool.open()`), checking connections on checkout."""
    return AsyncConnectionPool(
        dsn,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        timeout=settings.db_connect_timeout,
        # libpq's connect_timeout is whole seconds, at least 2 in effect.
        kwargs={"row_factory": dict_row, "connect_timeout": 2},
        check=AsyncConnectionPool.check_connection,
        open=False,
        name="voicegate",
    )


@contextmanager
def translate_db_errors() -> Iterator[None]:
    """Turn driver errors into domain errors: unreachable → 503, lifecycle SQLSTATEs → 4xx."""
    try:
        yield
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnavailable from exc
    except psycopg.Error as exc:
        sqlstate = exc.sqlstate or ""
        error = _SQLSTATE_ERRORS.get(sqlstate)
        if error is not None:
            raise error(exc.diag.message_primary or None) from exc
        if sqlstate.startswith("08") or sqlstate in {"57P01", "57P02", "57P03"}:
            raise DatabaseUnavailable from exc
        raise


@asynccontextmanager
async def service_transaction(pool: Pool) -> AsyncIterator[Connection]:
    """A transaction as `service_role` (bypasses RLS): for consumers, internal routes and scripts."""
    with translate_db_errors():
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("select set_config('role', 'service_role', true)")
            yield conn


@asynccontextmanager
async def user_transaction(pool: Pool, claims: Mapping[str, Any]) -> AsyncIterator[Connection]:
    """A transaction as `authenticated` carrying `claims`, as PostgREST runs a request."""
    with translate_db_errors():
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(
                "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                (json.dumps({**claims, "role": "authenticated"}),),
            )
            yield conn


async def ping(pool: Pool) -> None:
    """Raise DatabaseUnavailable unless the database answers a query."""
    with translate_db_errors():
        async with pool.connection() as conn:
            await conn.execute("select 1")


async def become_service(conn: Connection) -> None:
    """Switch a user transaction to `service_role` for its remaining statements.

    For use cases that check ownership under the caller's RLS and then write service-only rows in
    the same transaction. SET ROLE is checked against the session user, so this works from any role.
    """
    await conn.execute("select set_config('role', 'service_role', true)")
