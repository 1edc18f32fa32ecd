"""HEAD and OPTIONS as HTTP (RFC 9110 §9.3.2, §9.3.7) has them, for every path of the app: HEAD is answered wherever
GET is, with GET's status and headers and no body; OPTIONS is answered 204 with an `Allow` naming every method
the path takes.

Litestar routes HEAD only to handlers declared for it, and its own OPTIONS answer names the methods of one of
a path's routes, not all of them. So both are answered here, around the app's router, before routing.
"""

from __future__ import annotations

from typing import Final

from litestar._asgi.asgi_router import ASGIRouter
from litestar.enums import ScopeType
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils import normalize_path

from backend.fields import valid_host

#: The methods a path may take, besides HEAD (wherever GET is) and OPTIONS (everywhere).
_METHODS: Final = ("DELETE", "GET", "PATCH", "POST", "PUT")


class HeadAndOptions:
    """The app's ASGI handler, with HEAD and OPTIONS answered for every path."""

    def __init__(self, app: ASGIApp, router: ASGIRouter) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection's request."""
        if scope["type"] == ScopeType.HTTP:
            method = scope["method"]
            if method == "HEAD" and not self.takes(scope["path"], "HEAD"):
                scope["method"] = "GET"
                await self.app(scope, receive, _without_body(send))
                return
            if method == "OPTIONS" and valid_host(scope["headers"]):
                allowed = self.allowed(scope["path"])
                if allowed:
                    await _no_content(send, allowed)
                    return
        await self.app(scope, receive, send)

    def takes(self, path: str, method: str) -> bool:
        """Whether a route takes `method` at `path` (a route of its own for HEAD answers it as it means to, without
        running its GET: Storage's HEAD of an object reads no byte of it)."""
        try:
            self.router.handle_routing(path=normalize_path(path), method=method)
        except (MethodNotAllowedException, NotFoundException):
            return False
        return True

    def allowed(self, path: str) -> list[str]:
        """Every method a request to `path` may use, sorted (none when no route takes the path)."""
        methods = [method for method in _METHODS if self.takes(path, method)]
        if not methods:
            return []
        if "GET" in methods:
            methods.append("HEAD")
        return sorted([*methods, "OPTIONS"])


def _without_body(send: Send) -> Send:
    """`send` with every body chunk emptied: what GET would have sent, headers and all, less the content."""

    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body":
            await send({"type": "http.response.body", "body": b"", "more_body": message.get("more_body", False)})
        else:
            await send(message)

    return send_head


async def _no_content(send: Send, allowed: list[str]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [(b"allow", ", ".join(allowed).encode("latin-1"))],
        }
    )
    await send({"type": "http.response.body", "body": b"", "more_body": False})
