"""`POST /dev/session`: the demo page's sign-in in embedded mode, for the local user of the embedded
auth.users, answered to loopback callers only (production pages sign in with Supabase Auth)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, post
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler

from backend.auth.dev_session import DevSession
from backend.db.units import Database
from backend.http.deps import db_of
from backend.http.documents.openapi import problems
from backend.secret import Secret, is_loopback_host


def dev_session_handler(
    secret: Secret, open_session: Callable[[Database, Secret], Awaitable[DevSession]]
) -> HTTPRouteHandler:
    """The route, its sessions opened by `open_session` (embedded mode's, `backend.compose.embedded`) and their
    tokens signed with the project's JWT secret."""

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
        return await open_session(db_of(request), secret)

    return dev_session


def from_loopback(request: Request[Any, Any, Any]) -> bool:
    """True when the peer is a loopback address and the Host header names a loopback host."""
    host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
    return request.client is not None and is_loopback_host(request.client.host) and is_loopback_host(host)
