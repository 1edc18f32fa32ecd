"""The Host header, checked before any route runs: a request whose Host is not a host with an optional port
is answered 400 `invalid_host` on every route (the API's, the Storage stand-in's, the demo page's and the
docs'), unauthenticated and without a log line, instead of failing wherever the request's URL is built."""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from backend.errors import InvalidHost
from backend.fields import valid_host
from backend.http.pipeline.problem import send_problem


class HostCheckMiddleware:
    """Answers a request with a bad Host header itself, as problem+json, before the route's own error
    handling (the Storage stand-in's renders Storage's envelope) could meet it.

    A plain ASGI middleware factory (Litestar calls it with each route's app): every request passes it, and
    Litestar's `ASGIMiddleware` would add its checks of scope types, paths and route options to each."""

    def __call__(self, app: ASGIApp) -> ASGIApp:
        """The route's `app`, behind the check."""

        async def checked(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or valid_host(scope["headers"]):
                await app(scope, receive, send)
            else:
                await send_problem(InvalidHost(), scope, send)

        return checked
