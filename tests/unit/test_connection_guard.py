"""The server's connection guard in process (backend.http.pipeline.server): a connection is a light `_Unread` until its
first request's head has all arrived, one timer keeps every such connection's idle and header deadlines, and the memory
of a crowd of connections is handed back as it leaves. Against the real server: tests/e2e/test_connections.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import h11

from backend.http.pipeline import server
from backend.http.pipeline.server import ConnectionLimits, guarded_protocol


class Expiring:
    """A connection as the deadlines see it: what expired it, and why."""

    def __init__(self, name: str, expired: list[tuple[str, str]], done: asyncio.Event) -> None:
        self.name = name
        self._expired = expired
        self._done = done

    def expire(self, reason: str) -> None:
        self._expired.append((self.name, reason))
        if len(self._expired) == 3:
            self._done.set()

    def close(self, reason: str) -> None:
        raise AssertionError("the deadlines expire, they do not close")


async def test_one_timer_expires_each_connection_at_its_own_deadline_in_order() -> None:
    expired: list[tuple[str, str]] = []
    done = asyncio.Event()
    deadlines = server._UnreadDeadlines(ConnectionLimits(idle_timeout=0.05, header_timeout=0.1, max_connections=10))
    first, second, heading, gone = (Expiring(name, expired, done) for name in ("first", "second", "heading", "gone"))
    deadlines.idle(first)
    deadlines.idle(heading)
    deadlines.heading(heading)  # it spoke: the header deadline replaces its idle one
    deadlines.idle(gone)
    deadlines.forget(gone)  # closed before its deadline
    await asyncio.sleep(0.02)
    deadlines.idle(second)
    async with asyncio.timeout(5):
        await done.wait()
    assert expired == [("first", "idle"), ("second", "idle"), ("heading", "header")]
    assert deadlines._timer is None, "nothing left to wait for: no timer"


class Transport(asyncio.Transport):
    """A stream transport that records what the server writes and which protocol reads it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.wrote = asyncio.Event()
        self.closed = False
        self.protocol: asyncio.BaseProtocol | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)
        self.wrote.set()

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Config:
    """What uvicorn's protocol reads of its config, with an app that answers 204 to every request."""

    loaded = True
    h11_max_incomplete_event_size = None
    ws_protocol_class = None
    root_path = ""
    asgi_version = "3.0"
    limit_concurrency = None
    timeout_keep_alive = 5
    server_header = False
    date_header = False
    reset_contextvars = False

    def __init__(self) -> None:
        self.requests: list[str] = []

    async def loaded_app(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        self.requests.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


class ServerState:
    def __init__(self) -> None:
        self.connections: set[object] = set()
        self.tasks: set[object] = set()
        self.total_requests = 0
        self.default_headers: list[tuple[bytes, bytes]] = []


async def test_a_head_in_pieces_is_parsed_only_once_it_has_all_arrived() -> None:
    config, state = Config(), ServerState()
    protocol: Any = guarded_protocol(ConnectionLimits(idle_timeout=5, header_timeout=5, max_connections=10))
    unread: Any = protocol(config=config, server_state=state, app_state={})
    transport = Transport()
    unread.connection_made(transport)
    assert state.connections == {unread}
    for piece in (b"GET /healthz HT", b"TP/1.1\r\nHost: a\r\n", b"X-Slow: 1\r"):
        unread.data_received(piece)
        assert transport.protocol is None, "no request is parsed before its head has arrived"
    assert not hasattr(unread, "__dict__"), "a connection waiting for its head is a few slots, nothing more"
    unread.data_received(b"\n\r\n")
    h11_protocol: Any = transport.protocol
    assert h11_protocol is not None
    assert state.connections == {h11_protocol}
    async with asyncio.timeout(5):
        await transport.wrote.wait()
    assert config.requests == ["/healthz"]
    assert transport.written.startswith(b"HTTP/1.1 204 ")
    assert h11_protocol.conn.our_state is h11.IDLE, "kept alive for the next request"
    h11_protocol.connection_lost(None)
    assert state.connections == set()


async def test_a_head_longer_than_a_head_may_be_goes_to_the_parser_which_refuses_it() -> None:
    config, state = Config(), ServerState()
    protocol: Any = guarded_protocol(ConnectionLimits(idle_timeout=5, header_timeout=5, max_connections=10))
    unread: Any = protocol(config=config, server_state=state, app_state={})
    transport = Transport()
    unread.connection_made(transport)
    unread.data_received(b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 20_000)
    assert transport.protocol is not None
    assert transport.written.startswith(b"HTTP/1.1 4")
    assert transport.closed
    assert config.requests == []


async def test_past_the_cap_the_longest_waiting_connection_is_closed() -> None:
    config, state = Config(), ServerState()
    protocol: Any = guarded_protocol(ConnectionLimits(idle_timeout=5, header_timeout=5, max_connections=2))
    transports = [Transport() for _ in range(3)]
    for transport in transports:
        conn: Any = protocol(config=config, server_state=state, app_state={})
        conn.connection_made(transport)
    assert [t.closed for t in transports] == [True, False, False]
    for conn in list(state.connections):
        conn.connection_lost(None)


class Loop:
    def __init__(self) -> None:
        self.calls: list[Callable[[], None]] = []

    def call_soon(self, callback: Callable[[], None]) -> None:
        self.calls.append(callback)


def test_a_crowd_s_memory_is_given_back_as_it_leaves_down_to_the_last_few() -> None:
    memory, loop = server._MemoryBack(), Loop()
    for n in range(1, 16_001):
        memory.opened(n)
    given_back_at = []
    for n in range(15_999, -1, -1):
        before = len(loop.calls)
        memory.closed(n, loop)  # type: ignore[arg-type]
        if len(loop.calls) > before:
            given_back_at.append(n)
    assert given_back_at == [3999, 999, 249, 62]
    assert all(call is server.give_back for call in loop.calls)


def test_a_few_hundred_connections_are_no_crowd() -> None:
    memory, loop = server._MemoryBack(), Loop()
    for n in range(1, 1000):
        memory.opened(n)
    for n in range(998, -1, -1):
        memory.closed(n, loop)  # type: ignore[arg-type]
    assert loop.calls == []
