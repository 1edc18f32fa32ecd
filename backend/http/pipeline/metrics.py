"""Prometheus metrics of every request, per route template (never per id): counts, errors, latency and
requests in progress, served at `/metrics`; `backend.http.pipeline.exchange` counts each request as it logs it.

The same families as Litestar's Prometheus plugin (`voicegate_requests_total`, `voicegate_requests_error_total`,
`voicegate_request_duration_seconds`, labels `method`, `path`, `status_code`, `app_name`;
`voicegate_requests_in_progress` by `method` and `app_name`, as the route is not known until the request is
routed), at a fraction of its cost per request: each label set's metric children are looked up once and kept,
instead of built from a dict of labels on every request, which was a tenth of a bare request's time.
"""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

_LABELS = ("method", "path", "status_code", "app_name")
_APP = "voicegate"

REQUESTS = Counter("voicegate_requests_total", "Total requests", _LABELS)
ERRORS = Counter("voicegate_requests_error_total", "Total errors in requests", _LABELS)
DURATION = Histogram("voicegate_request_duration_seconds", "Request duration, in seconds", _LABELS)
IN_PROGRESS = Gauge(
    "voicegate_requests_in_progress",
    "Total requests currently in progress",
    ("method", "app_name"),
    multiprocess_mode="livesum",
)

REFUSED = Counter(
    "voicegate_database_refusals_total",
    "Requests refused on arrival while the database was out of reach or coming back (backend.db.admission)",
    ("kind",),
)


def count(method: str, path: str, status: int, seconds: float) -> None:
    """Count one finished request to the route template `path` (an error too, from 500 up)."""
    requests, duration, errors = _children(method, path, status)
    requests.inc()
    duration.observe(seconds)
    if errors is not None:
        errors.inc()


@functools.cache
def in_progress(method: str) -> Any:
    """The gauge of `method`'s requests in progress."""
    return IN_PROGRESS.labels(method, _APP)


@functools.cache
def _children(method: str, path: str, status: int) -> tuple[Any, Any, Any | None]:
    labels = (method, path, str(status), _APP)
    return REQUESTS.labels(*labels), DURATION.labels(*labels), ERRORS.labels(*labels) if status >= 500 else None
