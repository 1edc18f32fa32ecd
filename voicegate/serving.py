"""Serving the API: its listening socket, bound before anything starts, and uvicorn running the app on it."""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

from backend.settings import Settings, env_var
from voicegate.errors import CommandError

if TYPE_CHECKING:
    from types import FrameType

    import uvicorn
    from litestar import Litestar

    from backend.http.pipeline.server import ConnectionLimits


def api_listener(settings: Settings) -> socket.socket:
    """The API's socket, bound now rather than by uvicorn after start-up: a port another program holds is
    a one-line error before anything starts, and no connection made meanwhile (to Postgres, by the
    migrations, by the pool) can be handed the same port by the kernel."""
    try:
        # As asyncio's create_server would: the address's own family and protocol. The protocol matters:
        # asyncio sets TCP_NODELAY only on connections of an IPPROTO_TCP socket, and without it every
        # response waits out a delayed ACK (44 ms at p50 under wrk).
        family, kind, proto, _, address = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
    except OSError as exc:
        raise CommandError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from exc
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if settings.reuse_port:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        listener.bind(address)
    except OSError as exc:
        listener.close()
        raise CommandError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc};"
            f" stop what holds it or choose another port with {env_var('port')}=<port> (--port, make up PORT=<port>)"
        ) from exc
    return listener


def run_server(settings: Settings, dsn: str, listener: socket.socket, *, run_consumers: bool) -> int:
    """Serve the app over the database at `dsn` on `listener` (with the queue consumers in it, unless not
    `run_consumers`) until it is told to stop; 1 when its consumers failed, else 0."""
    from backend.app import create_app  # noqa: PLC0415 - keep `--help` fast
    from queue_consumers.worker import consume_in_app  # noqa: PLC0415
    from standins.in_app import EMBEDDED  # noqa: PLC0415

    app = create_app(settings, dsn, consumers=consume_in_app if run_consumers else None, embedded=EMBEDDED)
    serve_app(settings, app, listener)
    return 1 if getattr(app.state, "worker_failed", False) else 0


def serve_app(settings: Settings, app: Litestar, listener: socket.socket) -> None:
    """Serve `app` with uvicorn on `listener` until SIGINT, SIGTERM or SIGHUP."""
    import asyncio  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415

    from backend.http.pipeline.server import (  # noqa: PLC0415
        ConnectionLimits,
        default_max_connections,
        raise_fd_limit,
        release_large_blocks_at_once,
    )
    from backend.secret import RedactUrlCredentials  # noqa: PLC0415

    class Server(uvicorn.Server):
        """uvicorn, minus its re-raising of SIGTERM/SIGINT after a graceful shutdown: we still have to
        stop what we started (the embedded Postgres) and then exit 0. SIGHUP (the terminal `up` runs in
        was closed) shuts down the same way instead of killing the process and leaving Postgres running."""

        woken: asyncio.Event | None = None
        loop: asyncio.AbstractEventLoop | None = None

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            if self.loop is not None and self.woken is not None:
                self.loop.call_soon_threadsafe(self.woken.set)

        async def main_loop(self) -> None:
            # uvicorn wakes ten times a second to see whether it should exit, the most of what an idle server did
            # after its polls: a signal wakes this at once instead, and a second a round keeps the Date header.
            self.loop, self.woken = asyncio.get_running_loop(), asyncio.Event()
            rounds = 0
            while not await self.on_tick(rounds * 10):  # on_tick dates the responses on every tenth tick
                rounds = (rounds + 1) % 86_400
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.woken.wait(), 1.0)

    # What is loaded by now (modules, the app, its handlers) lives as long as the process: moved out of
    # the collector's generations, the collections garbage from requests sets off stop scanning it.
    gc.collect()
    gc.freeze()
    release_large_blocks_at_once()
    limits = ConnectionLimits(
        idle_timeout=settings.idle_timeout,
        header_timeout=settings.header_timeout,
        max_connections=settings.max_connections or default_max_connections(raise_fd_limit()),
    )
    logging.getLogger("voicegate.access").addFilter(RedactUrlCredentials())
    Server(server_config(settings, app, limits)).run(sockets=[listener])


def server_config(settings: Settings, app: Litestar, limits: ConnectionLimits) -> uvicorn.Config:
    """uvicorn's configuration for serving `app`: uvloop's event loop, the guarded h11 protocol, no access log."""
    import uvicorn  # noqa: PLC0415

    from backend.http.pipeline.server import guarded_protocol  # noqa: PLC0415

    return uvicorn.Config(
        app,
        # Every stream's opening, relay and end, and the queue consumers' polls, run on the one loop: libuv's
        # costs a stream less of that loop's CPU than asyncio's selector loop (docs/benchmarks.md).
        loop="uvloop",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # uvicorn's own records go to the process's handler (configure_logging), in the same format as ours.
        log_config=None,
        lifespan="on",
        # The connections' deadlines and cap (backend.http.pipeline.server).
        http=guarded_protocol(limits),
        # The app's exchange logs each request once, with the status /metrics counts (backend.http.pipeline.exchange).
        access_log=False,
        # Each request in a context of its own: asyncio otherwise starts a connection's next requests in the
        # context of the one whose large body paused reading (https://github.com/python/cpython/issues/140947).
        reset_contextvars=True,
    )
