"""The HTTP/1.1 server under the app: uvicorn's h11 protocol with a deadline on every connection and a cap on how
many are open, so connections that never speak cannot hold the process's file descriptors.

- VOICEGATE_IDLE_TIMEOUT: a connection with no request on it (before its first byte, and between requests) is
  closed after it.
- VOICEGATE_HEADER_TIMEOUT: from a request's first byte, its request line and headers must all arrive within
  it, or the connection is answered 408 and closed.
- VOICEGATE_MAX_CONNECTIONS (default 80 % of the file-descriptor limit, which `raise_fd_limit` first raises to
  the hard limit): past it, a new connection closes the one that has waited longest with no request on it.
  Every new connection gets in that way, `/healthz` and `/readyz` among them, and the process never runs out of
  descriptors; only when every open connection has a request in flight is the new one answered 503 and closed.

The body's own deadline (VOICEGATE_BODY_TIMEOUT, VOICEGATE_BODY_MIN_RATE) is the app's door's
(`backend.http.door`): only the app knows when it is waiting for a body rather than busy with one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import resource
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

import h11
from prometheus_client import Counter, Gauge
from uvicorn.protocols.http.h11_impl import H11Protocol

#: The share of the file-descriptor limit connections may take by default; the rest is the process's own
#: (database connections, files, the provider clients').
CONNECTIONS_SHARE: Final = 0.8

CLOSED = Counter(
    "voicegate_connections_closed_total",
    "Connections the server closed itself, by why: idle, header (VOICEGATE_HEADER_TIMEOUT), evicted (to make"
    " room under VOICEGATE_MAX_CONNECTIONS) or full (every open connection had a request in flight)",
    ("reason",),
)
OPEN = Gauge("voicegate_connections_open", "HTTP connections open", multiprocess_mode="livesum")

_TIMED_OUT: Final = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_FULL: Final = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nretry-after: 1\r\nconnection: close\r\n\r\n"


@dataclass(frozen=True)
class ConnectionLimits:
    """The connection deadlines and cap (see the module docstring)."""

    idle_timeout: float
    header_timeout: float
    max_connections: int


def raise_fd_limit() -> int:
    """Raise this process's file-descriptor limit (RLIMIT_NOFILE) to its hard limit; the limit it has now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
        return hard
    return soft


def default_max_connections(fd_limit: int) -> int:
    """The connection cap for a process that may open `fd_limit` descriptors."""
    return max(1, int(fd_limit * CONNECTIONS_SHARE))


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol held to `limits`: a class of its own per server, sharing the server's connections
    that have no request on them, longest-waiting first."""
    waiting: OrderedDict[H11Protocol, None] = OrderedDict()
    memory = _MemoryBack()

    class GuardedH11Protocol(H11Protocol):
        """One connection, held to the deadlines and the cap."""

        _timer: asyncio.TimerHandle | None = None
        _reading_head = False

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.timeout_keep_alive = limits.idle_timeout  # type: ignore[assignment]  # uvicorn's is whole seconds

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            memory.opened(len(self.connections))
            OPEN.inc()
            waiting[self] = None
            self._timer = self.loop.call_later(limits.idle_timeout, self._expire, "idle")
            if len(self.connections) > limits.max_connections:
                oldest = next(iter(waiting))
                if oldest is self:
                    transport.write(_FULL)
                    self._close("full")
                else:
                    oldest._close("evicted")  # type: ignore[attr-defined]

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            OPEN.dec()
            self._forget()
            memory.closed(len(self.connections), self.loop)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.transport.is_closing():
                return
            if self.conn.their_state is not h11.IDLE:
                # A request is in flight: its body's pace is the app's to judge.
                self._reading_head = False
                self._forget()
            elif not self._reading_head:
                self._reading_head = True
                self._cancel_timer()
                self._timer = self.loop.call_later(limits.header_timeout, self._expire, "header")

        def on_response_complete(self) -> None:
            # uvicorn arms its keep-alive timer (VOICEGATE_IDLE_TIMEOUT) here; the connection waits again.
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                waiting[self] = None

        def timeout_keep_alive_handler(self) -> None:
            if not self.transport.is_closing():
                CLOSED.labels("idle").inc()
            super().timeout_keep_alive_handler()

        def _expire(self, reason: str) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            if reason == "header":
                self.transport.write(_TIMED_OUT)
            self._close(reason)

        def _close(self, reason: str) -> None:
            self._forget()
            CLOSED.labels(reason).inc()
            self.transport.close()

        def _forget(self) -> None:
            """No longer a connection waiting for a request: out of the queue to evict, its timer off."""
            waiting.pop(self, None)
            self._cancel_timer()

        def _cancel_timer(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    return GuardedH11Protocol


class _MemoryBack:
    """Hands the memory of a crowd of connections back to the system once most of them are gone.

    An idle connection costs about 5 KB of small objects; freed, they stay with Python's allocator and the C
    library's, so after ten thousand connections come and go the process would stay 50 MB larger. Once the
    connections open fall below a quarter of the crowd's peak, a full collection and `malloc_trim` give the
    emptied memory back (once per crowd: a few milliseconds, never per connection)."""

    #: Fewer connections than this at their peak are no crowd.
    CROWD: Final = 2000

    def __init__(self) -> None:
        self.peak = 0

    def opened(self, open_now: int) -> None:
        """A connection opened; `open_now` are open."""
        self.peak = max(self.peak, open_now)

    def closed(self, open_now: int, loop: asyncio.AbstractEventLoop) -> None:
        """A connection closed; `open_now` are open."""
        if self.peak >= self.CROWD and open_now * 4 < self.peak:
            self.peak = open_now
            loop.call_soon(_give_back)


def _give_back() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
