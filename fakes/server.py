"""Run a fake ASGI app with uvicorn on 127.0.0.1 in a background thread."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def serve(app: Any, host: str = "127.0.0.1", port: int = 0, *, lifespan: str = "off") -> Iterator[str]:
    """Serve ``app`` and yield its base URL; stops the server and joins the thread on exit.

    ``lifespan="on"`` runs the app's startup and shutdown (voicegate's own app needs its pool).

    The socket is bound and listening before the thread starts, so the URL is usable at once:
    connections wait in the backlog until uvicorn's loop accepts them.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan=lifespan,  # type: ignore[arg-type]  # uvicorn types it as a Literal
        log_level="warning",
        access_log=False,
        http="h11",
        ws="none",
        loop="asyncio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="fake-server")
    thread.start()
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
