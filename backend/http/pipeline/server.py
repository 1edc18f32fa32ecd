"""The HTTP/1.1 server under the app: uvicorn's h11 protocol with a deadline on every connection and a cap on how
many are open, so connections that never speak cannot hold the process's file descriptors. Until its first
request's head has arrived a connection is not yet h11's: it costs a few slots beside its transport, and one
timer keeps the deadlines of all such connections, so a crowd of them costs little memory and leaves little behind.

- VOICEGATE_IDLE_TIMEOUT: a connection with no request on it (before its first byte, and between requests) is
  closed after it.
- VOICEGATE_HEADER_TIMEOUT: from a request's first byte, its request line and headers must all arrive within
  it, or the connection is answered 408 and closed.
- VOICEGATE_MAX_CONNECTIONS (default 80 % of the file-descriptor limit, which `raise_fd_limit` first raises to
  the hard limit): past it, a new connection closes the one that has waited longest with no request on it.
  Every new connection gets in that way, `/healthz` and `/readyz` among them, and the process never runs out of
  descriptors; only when every open connection has a request in flight is the new one answered 503 and closed.

The body's own deadline (VOICEGATE_BODY_TIMEOUT, VOICEGATE_BODY_MIN_RATE) is the app's exchange's
(`backend.http.pipeline.exchange`): only the app knows when it is waiting for a body rather than busy with one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import re
import resource
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Protocol, cast

import h11
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
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


class _Deadlined:
    """What a connection does when one of its deadlines passes (408 for a head that did not arrive in time) or the
    cap closes it: closed, counted by why."""

    __slots__ = ()
    transport: asyncio.Transport

    def expire(self, reason: str) -> None:
        """Its idle or header deadline passed."""
        if reason == "header":
            self.transport.write(_TIMED_OUT)
        self.close(reason)

    def close(self, reason: str) -> None:
        """Close the connection, counting why."""
        self._forget()
        CLOSED.labels(reason).inc()
        self.transport.close()

    def _forget(self) -> None:
        raise NotImplementedError


def guarded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """The protocol each of a server's connections starts with, held to `limits`: a class of its own per server.

    A connection's first request is not parsed until its request line and headers have all arrived: until then
    it is an `_Unread` connection, a few bytes of Python beside its transport, whose idle and header deadlines
    one timer keeps for all of them. Then it becomes uvicorn's h11 protocol, which serves it to the end.
    A crowd of connections that never finish a request so costs little memory and leaves little behind."""

    class Unread(_Unread):
        """`_Unread`, for this server's connections."""

        __slots__ = ()
        guard = _Guard(limits)

    return Unread


class _Guard:
    """What a server's connections share: the cap's queue, the deadlines of those whose head has not arrived, the
    memory they hand back, and the server's uvicorn state."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        #: Every connection with no request in flight, longest-waiting first: what the cap closes first.
        self.waiting: OrderedDict[_Closable, None] = OrderedDict()
        self.memory = _MemoryBack()
        self.unread = _UnreadDeadlines(limits)
        #: The server's uvicorn config, state and app state, the same for each of its connections.
        self.server: dict[str, Any] = {}

    def serving(self, config: Any, server_state: Any, app_state: Any) -> None:
        """A connection of the server that `config`, `server_state` and `app_state` are uvicorn's was made: kept
        from the first one, for the h11 protocol each connection becomes."""
        if not self.server:
            self.server.update(config=config, server_state=server_state, app_state=app_state)
            self.unread.head_limit = config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE

    def admit(self, conn: _Unread) -> None:
        """`conn` opened: counted, waiting for its first byte; past the cap, the longest-waiting connection is
        closed to make room, or `conn` itself is answered 503 when every other one has a request in flight."""
        connections = self.server["server_state"].connections
        connections.add(conn)
        OPEN.inc()
        self.memory.opened(len(connections))
        self.waiting[conn] = None
        self.unread.idle(conn)
        if len(connections) > self.limits.max_connections:
            oldest = next(iter(self.waiting))
            if oldest is conn:
                conn.transport.write(_FULL)
                conn.close("full")
            else:
                oldest.close("evicted")

    def hand_over(self, conn: _Unread, head: bytes) -> None:
        """`conn`'s first head has arrived (or more than a head may be): uvicorn's protocol takes it over."""
        self.server["server_state"].connections.discard(conn)
        protocol = _GuardedH11Protocol(self, **self.server)
        conn.transport.set_protocol(protocol)
        protocol.connection_made(conn.transport)
        protocol.data_received(head)


class _Unread(_Deadlined, asyncio.Protocol):
    """A connection whose first request's head has not all arrived: its transport and the bytes so far. Each server
    has a subclass of its own (`guarded_protocol`) that names the server's `guard`."""

    __slots__ = ("head", "transport")
    guard: ClassVar[_Guard]

    def __init__(
        self, config: Any, server_state: Any, app_state: Any, _loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.guard.serving(config, server_state, app_state)
        self.head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # a stream's
        self.guard.admit(self)

    def data_received(self, data: bytes) -> None:
        head = self.head + data
        unread = self.guard.unread
        if _HEAD_END.search(head, max(0, len(self.head) - 2)) is None and len(head) < unread.head_limit:
            if not self.head:
                unread.heading(self)
            self.head = head
            return
        self._forget()
        self.guard.hand_over(self, head)

    def connection_lost(self, exc: Exception | None) -> None:
        connections = self.guard.server["server_state"].connections
        connections.discard(self)
        OPEN.dec()
        self._forget()
        self.guard.memory.closed(len(connections), asyncio.get_running_loop())

    def shutdown(self) -> None:
        """The server is stopping (uvicorn asks each connection): nothing is in flight, so close now."""
        self._forget()
        self.transport.close()

    def _forget(self) -> None:
        self.guard.waiting.pop(self, None)
        self.guard.unread.forget(self)


class _GuardedH11Protocol(_Deadlined, H11Protocol):
    """A connection whose first request's head has arrived, held to the deadlines between its requests."""

    _timer: asyncio.TimerHandle | None = None
    _reading_head = False

    def __init__(self, guard: _Guard, *args: Any, **kwargs: Any) -> None:
        self._guard = guard
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = guard.limits.idle_timeout  # type: ignore[assignment]  # uvicorn's is whole seconds

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._guard.waiting[self] = None
        self._timer = self.loop.call_later(self._guard.limits.idle_timeout, self._expire, "idle")

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        OPEN.dec()
        self._forget()
        self._guard.memory.closed(len(self.connections), self.loop)

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
            self._timer = self.loop.call_later(self._guard.limits.header_timeout, self._expire, "header")

    def on_response_complete(self) -> None:
        # uvicorn arms its keep-alive timer (VOICEGATE_IDLE_TIMEOUT) here; the connection waits again.
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._guard.waiting[self] = None

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing():
            CLOSED.labels("idle").inc()
        super().timeout_keep_alive_handler()

    def _expire(self, reason: str) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        self.expire(reason)

    def _forget(self) -> None:
        """No longer a connection waiting for a request: out of the queue to evict, its timer off."""
        self._guard.waiting.pop(self, None)
        self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


#: Where a request's head ends, as h11 finds it (a line ending may be a bare LF).
_HEAD_END: Final = re.compile(b"\n\r?\n")


class _Closable(Protocol):
    def close(self, reason: str) -> None: ...


class _Expiring(_Closable, Protocol):
    def expire(self, reason: str) -> None: ...


class _UnreadDeadlines:
    """The idle deadline of connections that have sent nothing and the header deadline of those whose first head is
    arriving, kept by one timer for all of them (a timer each would cost three objects a connection). Each
    deadline is the same length for every connection, so each queue is in deadline order: the timer wakes at the
    earliest and expires every connection whose deadline has passed."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.head_limit = DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        self._idle: OrderedDict[_Expiring, float] = OrderedDict()
        self._heading: OrderedDict[_Expiring, float] = OrderedDict()
        self._timer: asyncio.TimerHandle | None = None

    def idle(self, conn: _Expiring) -> None:
        """`conn` opened: it has `idle_timeout` to send its first byte."""
        self._idle[conn] = asyncio.get_running_loop().time() + self.limits.idle_timeout
        self._arm()

    def heading(self, conn: _Expiring) -> None:
        """`conn` sent the first bytes of its head: it has `header_timeout` for the rest."""
        self._idle.pop(conn, None)
        self._heading[conn] = asyncio.get_running_loop().time() + self.limits.header_timeout
        self._arm()

    def forget(self, conn: _Expiring) -> None:
        """`conn` closed, or its head arrived: no deadline of these any more."""
        self._idle.pop(conn, None)
        self._heading.pop(conn, None)

    def _arm(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(self._next(), self._expire)

    def _next(self) -> float:
        return min(next(iter(queue.values())) for queue in (self._idle, self._heading) if queue)

    def _expire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for queue, reason in ((self._idle, "idle"), (self._heading, "header")):
            while queue:
                conn, deadline = next(iter(queue.items()))
                if deadline > now:
                    break
                del queue[conn]
                conn.expire(reason)
        if self._idle or self._heading:
            self._timer = loop.call_at(self._next(), self._expire)


class _MemoryBack:
    """Hands the memory of a crowd of connections back to the system as it leaves.

    A connection that never finished a request costs about 2 KB of small objects; freed, they stay with
    Python's allocator (its free lists among them) and the C library's. Each time the connections open fall
    below a quarter of what they were at the last hand-back, down to the last few, a full collection (which also
    empties Python's free lists) and `malloc_trim` give the emptied memory back: a handful of times per crowd, a
    few milliseconds each, never per connection."""

    #: Fewer connections than this at their peak are no crowd.
    CROWD: Final = 2000
    #: Fewer connections than this left open: the crowd has gone.
    GONE: Final = 64

    def __init__(self) -> None:
        self.peak = 0
        self.crowd = False

    def opened(self, open_now: int) -> None:
        """A connection opened; `open_now` are open."""
        self.peak = max(self.peak, open_now)
        self.crowd = self.crowd or self.peak >= self.CROWD

    def closed(self, open_now: int, loop: asyncio.AbstractEventLoop) -> None:
        """A connection closed; `open_now` are open."""
        if self.crowd and open_now * 4 < self.peak:
            # The next hand-back comes at a quarter of these, down to GONE; then none until another crowd.
            self.peak = open_now
            self.crowd = open_now >= self.GONE
            loop.call_soon(give_back)


def give_back() -> None:
    """Return the memory Python and the C library hold unused to the system."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        _libc().malloc_trim(0)


def release_large_blocks_at_once() -> None:
    """Have the C library return every block of 128 KiB or more (a request's body, a decoded clip) to the system
    as soon as it is freed. By default it raises that threshold to the largest block freed so far, so after the
    first megabyte-sized bodies the next ones come from its heap, where what they leave behind stays."""
    with contextlib.suppress(OSError, AttributeError):
        _libc().mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


#: mallopt's parameter for the size from which blocks are mapped on their own (glibc's malloc.h).
_M_MMAP_THRESHOLD: Final = -3


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
