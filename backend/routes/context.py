"""What every handler needs: the caller's verified identity and the pool, from the request."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Request
from psycopg_pool import AsyncConnectionPool

from backend.auth.verify import UserClaims, bearer_token
from backend.db.pool import Connection, user_transaction


async def current_user(request: Request[Any, Any, Any]) -> UserClaims:
    """The caller's claims from a verified Supabase access token (401 otherwise)."""
    token = bearer_token(request.headers.get("authorization"))
    claims: UserClaims = await request.app.state.verifier.verify_user(token)
    return claims


async def require_service(request: Request[Any, Any, Any]) -> None:
    """Allow only the service key (internal routes)."""
    request.app.state.verifier.verify_service(bearer_token(request.headers.get("authorization")))


def pool_of(request: Request[Any, Any, Any]) -> AsyncConnectionPool[Connection]:
    """The application's connection pool."""
    pool: AsyncConnectionPool[Connection] = request.app.state.pool
    return pool


def user_id(claims: UserClaims) -> uuid.UUID:
    """The caller's user id."""
    return uuid.UUID(claims.sub)


@asynccontextmanager
async def user_scope(request: Request[Any, Any, Any]) -> AsyncIterator[Connection]:
    """A transaction as the verified caller: role `authenticated` with their claims, so RLS decides."""
    claims = await current_user(request)
    async with user_transaction(pool_of(request), claims.raw) as conn:
        yield conn
