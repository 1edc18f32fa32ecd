"""The exchange every HTTP request passes through before the app routes it: its framing, the pace of its body, the one
access-log line and the metrics of its answer.

- A request that says both `Content-Length` and `Transfer-Encoding` is answered 400 `ambiguous_framing` and its
  connection closed (RFC 9112 §6.1): a proxy in front that trusts the length would read the next request
  somewhere else in the bytes than this server does.
- A body must keep arriving: the time the app spends waiting for it may not pass VOICEGATE_BODY_TIMEOUT plus one
  second for every VOICEGATE_BODY_MIN_RATE bytes that arrived, or the request is answered 408 `body_too_slow`.
  Time the app spends not reading (a slow consumer, not a slow client) is not counted.
- A client that closes its connection before its body has arrived ends the request as 499 `client_gone`: one
  access-log line at INFO, never a server error.
- An answer sent before the request's body has all arrived closes the connection after it (`Connection: close`),
  so the server never reads the rest of a refused body, unless it is one a client retries (401, 429, 503): that
  keeps the connection, whose server reads and drops the rest of the body, so a client still sending it reads the
  answer, where a connection closed under it would be reset before it could.

Every request is counted in `/metrics` (by route template, never by id) and logged once, with the same status,
by the `voicegate.access` logger at INFO: a request refused by a middleware, one to no route, one the client
left, all of them, so the access log and the metrics agree line for line. Each request is served under its id
(`backend.logs`), which its answer carries in `X-Request-Id` and every record written for it names.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from backend.errors import AmbiguousFraming, BodyTooSlow, ClientGone
from backend.http.pipeline.metrics import count, in_progress
from backend.http.pipeline.problem import send_problem
from backend.logs import REQUEST_ID, REQUEST_ID_HEADER, request_id_from
from backend.secret import redact_url_credentials

access_log = logging.getLogger("voicegate.access")

#: The `path` label of a request no route took (a 404, a framing refusal).
NO_ROUTE: Final = "(no route)"
#: The status of a request whose client left before it was answered (nginx's, never sent).
CLIENT_GONE: Final = 499

_CLOSE: Final = (b"connection", b"close")
#: The early answers a client retries, which keep the connection so that a client still sending its body reads them.
_RETRIED: Final = frozenset({401, 429, 503})


class BodyPace:
    """How long the app may still wait for the rest of a body: `grace` seconds plus a second for every
    `min_rate` bytes that arrived, less what it has waited already."""

    __slots__ = ("arrived", "grace", "min_rate", "waited")

    def __init__(self, grace: float, min_rate: int) -> None:
        self.grace = grace
        self.min_rate = min_rate
        self.arrived = 0
        self.waited = 0.0

    def allowance(self) -> float:
        """Seconds the next wait for the body may take."""
        return self.grace + self.arrived / self.min_rate - self.waited


class Exchange:
    """The app's ASGI handler behind the exchange (see the module docstring). `/metrics` itself is not counted."""

    def __init__(self, app: ASGIApp, *, body_timeout: float, body_min_rate: int) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.body_min_rate = body_min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (other scopes pass as they are)."""
        if scope["type"] != ScopeType.HTTP or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        started = time.perf_counter()
        framing = _framing(scope["headers"])
        body = _Body(framing != 0, BodyPace(self.body_timeout, self.body_min_rate))
        request_id = request_id_from(scope["headers"])
        served_as = REQUEST_ID.set(request_id)
        answer = _Answer(send, body, request_id.encode("ascii"))
        gauge = in_progress(method)
        gauge.inc()
        failed = False
        try:
            if framing is None:
                await send_problem(AmbiguousFraming(), scope, answer.send)
            else:
                await self.app(scope, body.wrap(receive), answer.send)
        except BaseException:
            failed = True  # the server answers it 500
            raise
        finally:
            gauge.dec()
            status = CLIENT_GONE if body.gone or (answer.status is None and not failed) else answer.status or 500
            seconds = time.perf_counter() - started
            count(method, scope.get("path_template", NO_ROUTE), status, seconds)
            _log(scope, method, status, seconds)
            REQUEST_ID.reset(served_as)


def _log(scope: Scope, method: str, status: int, seconds: float) -> None:
    """The request's access-log line, as uvicorn's own was (which `voicegate serve` turns off), its parts also
    as fields for a JSON log."""
    if access_log.isEnabledFor(logging.INFO):
        client = scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else "-"
        query = scope.get("query_string", b"")
        # A signed Storage URL carries its token in the query: the line never does.
        path = redact_url_credentials(scope["path"] + ("?" + query.decode("latin-1") if query else ""))
        access_log.info(
            '%s - "%s %s HTTP/%s" %d',
            peer,
            method,
            path,
            scope["http_version"],
            status,
            extra={
                "client": peer,
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
            },
        )


def _framing(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """0 for a request without a body, 1 for one with; None for one that says both Content-Length and
    Transfer-Encoding (or Content-Length twice, differently)."""
    length: bytes | None = None
    chunked = False
    for name, value in headers:
        if name == b"content-length":
            if length is not None and value != length:
                return None
            length = value
        elif name == b"transfer-encoding":
            chunked = True
    if chunked:
        return None if length is not None else 1
    return 0 if length is None or length.strip() == b"0" else 1


class _Body:
    """The request's body as the app receives it, paced; whether it has all arrived, or its client left."""

    __slots__ = ("complete", "gone", "pace")

    def __init__(self, expected: bool, pace: BodyPace) -> None:
        self.complete = not expected
        self.gone = False
        self.pace = pace

    def wrap(self, receive: Receive) -> Receive:
        """`receive`, paced until the body is complete; then `receive` itself (a streaming answer listens on it
        for the client leaving, however long it plays)."""

        async def paced() -> ReceiveMessage:
            if self.complete:
                return await receive()
            pace = self.pace
            started = time.monotonic()
            try:
                async with asyncio.timeout(max(pace.allowance(), 0.0)):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow(
                    f"The body arrived at fewer than {pace.min_rate} bytes a second"
                    f" ({pace.arrived} bytes in {pace.waited + time.monotonic() - started:.0f} s)."
                ) from None
            finally:
                pace.waited += time.monotonic() - started
            if message["type"] == "http.disconnect":
                self.gone = True
                raise ClientGone
            chunk: bytes = message.get("body", b"")  # type: ignore[assignment]  # an http.request's
            pace.arrived += len(chunk)
            if not message.get("more_body", False):
                self.complete = True
            return message

        return paced


class _Answer:
    """`send`, noting the status and naming the request's id; an early answer closes the connection after,
    unless a client retries it."""

    __slots__ = ("_body", "_request_id", "_send", "status")

    def __init__(self, send: Send, body: _Body, request_id: bytes) -> None:
        self._send = send
        self._body = body
        self._request_id = request_id
        self.status: int | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = [*message.get("headers", ()), (REQUEST_ID_HEADER, self._request_id)]
            if not self._body.complete and self.status not in _RETRIED:
                headers.append(_CLOSE)
            message = {**message, "headers": headers}
        await self._send(message)
