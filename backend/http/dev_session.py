"""`POST /dev/session`: the demo page's sign-in in embedded mode, for the local user of the embedded
auth.users, answered to loopback callers only (production pages sign in with Supabase Auth)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec
from litestar import Request, post
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler

from backend.db.units import database_work
from backend.embedded.dev_tokens import mint_user_token
from backend.embedded.dev_users import find_or_create_dev_user
from backend.http.deps import pool_of
from backend.http.docs import problems
from backend.secret import Secret, is_loopback_host

DEV_SESSION_EMAIL: Final = "you@voicegate.local"
DEV_SESSION_TTL_SECONDS: Final = 12 * 3600


class DevUser(msgspec.Struct, frozen=True):
    """The embedded stack's local user."""

    id: uuid.UUID
    email: str


class DevSession(msgspec.Struct, frozen=True, rename="camel"):
    """An access token for the local user, shaped as Supabase Auth issues them."""

    access_token: str
    expires_at: datetime
    user: DevUser


def dev_session_handler(secret: Secret) -> HTTPRouteHandler:
    """The route, signing its tokens with the project's JWT secret."""

    @post(
        "/dev/session",
        status_code=200,
        tags=("demo page",),
        cache_control=CacheControlHeader(no_store=True),
        summary="Embedded mode, loopback only: a session for the demo page's local user",
        responses=problems(400, 404, 503),
    )
    async def dev_session(request: Request[Any, Any, Any]) -> DevSession:
        """An access token for the local user (created on first use). Answers 404 unless both the caller
        and the address it used are loopback: a token for anyone who can reach the port would let any
        page on a network, or a DNS-rebinding site, act as that user."""
        if not from_loopback(request):
            raise NotFoundException
        async with database_work(pool_of(request)) as conn:
            user_id, email = await find_or_create_dev_user(conn, DEV_SESSION_EMAIL)
        token = mint_user_token(secret, user_id, email=email, ttl_seconds=DEV_SESSION_TTL_SECONDS)
        expires_at = datetime.now(UTC) + timedelta(seconds=DEV_SESSION_TTL_SECONDS)
        return DevSession(access_token=token, expires_at=expires_at, user=DevUser(user_id, email))

    return dev_session


def from_loopback(request: Request[Any, Any, Any]) -> bool:
    """True when the peer is a loopback address and the Host header names a loopback host."""
    host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
    return request.client is not None and is_loopback_host(request.client.host) and is_loopback_host(host)
