"""Prometheus metrics of every request, per route template (never per id): counts, errors, latency and
requests in progress, served at `/metrics`.

The same families and labels as Litestar's Prometheus plugin (`voicegate_requests_total`,
`voicegate_requests_error_total`, `voicegate_request_duration_seconds`, `voicegate_requests_in_progress`;
labels `method`, `path`, `status_code`, `app_name`), at a fraction of its cost per request: each label
set's metric children are looked up once and kept, instead of built from a dict of labels on every
request, which was a tenth of a bare request's time.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge, Histogram

_LABELS = ("method", "path", "status_code", "app_name")
_APP = "voicegate"

REQUESTS = Counter("voicegate_requests_total", "Total requests", _LABELS)
ERRORS = Counter("voicegate_requests_error_total", "Total errors in requests", _LABELS)
DURATION = Histogram("voicegate_request_duration_seconds", "Request duration, in seconds", _LABELS)
IN_PROGRESS = Gauge(
    "voicegate_requests_in_progress", "Total requests currently in progress", _LABELS, multiprocess_mode="livesum"
)

REFUSED = Counter(
    "voicegate_database_refusals_total",
    "Requests refused at the door while the database was out of reach or coming back (backend.db.admission)",
    ("kind",),
)

_Finished = tuple[Any, Any, Any | None]  # the request counter, duration histogram and error counter children


@functools.cache
def _children(method: str, path: str, status: int) -> _Finished:
    labels = (method, path, str(status), _APP)
    return REQUESTS.labels(*labels), DURATION.labels(*labels), ERRORS.labels(*labels) if status >= 500 else None


@functools.cache
def _gauge(method: str, path: str) -> Any:
    return IN_PROGRESS.labels(method, path, "200", _APP)


class MetricsMiddleware:
    """Counts and times each request under its route template (Litestar sets it before middleware runs).

    A plain ASGI middleware factory (Litestar calls it with each route's app), as `HostCheckMiddleware` is;
    `/metrics` itself is not counted."""

    def __call__(self, app: ASGIApp) -> ASGIApp:
        """The route's `app`, counted and timed."""

        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] not in _MEASURED or scope["path"] == "/metrics":
                await app(scope, receive, send)
            else:
                await _measure(app, scope, receive, send)

        return measured


_MEASURED = frozenset({ScopeType.HTTP, ScopeType.WEBSOCKET})


async def _measure(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run the request; count it, and its latency until its last body chunk, by route and status."""
    method = scope["method"] if scope["type"] == ScopeType.HTTP else scope["type"]
    path = scope["path_template"]  # set by Litestar's router, so never a concrete id
    started = time.perf_counter()
    span = [200, 0.0]  # status, seconds until the last body chunk was sent

    async def timed_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            span[0] = message["status"]
        elif message["type"] == "http.response.body":
            span[1] = time.perf_counter() - started
        await send(message)

    gauge = _gauge(method, path)
    gauge.inc()
    try:
        await app(scope, receive, timed_send)
    finally:
        gauge.dec()
        count, duration, error = _children(method, path, int(span[0]))
        count.inc()
        duration.observe(span[1])
        if error is not None:
            error.inc()
