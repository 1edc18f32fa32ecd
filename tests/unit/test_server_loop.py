"""The API server's event loop: uvloop's, whose loop costs each stream's opening and relay less CPU than
asyncio's selector loop on the one thread every request shares."""

from __future__ import annotations

import asyncio

import uvloop
from litestar import Litestar

from backend.http.pipeline.server import ConnectionLimits
from backend.settings import settings_from_env
from voicegate.serving import server_config


def test_the_server_runs_its_app_on_uvloop() -> None:
    limits = ConnectionLimits(idle_timeout=5.0, header_timeout=5.0, max_connections=10)
    config = server_config(settings_from_env({}), Litestar([], logging_config=None), limits)
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)

        async def running() -> asyncio.AbstractEventLoop:
            return asyncio.get_running_loop()

        # The loop runs a coroutine as asyncio.run would hand it the server.
        assert loop.run_until_complete(running()) is loop
    finally:
        loop.close()
