"""A lease kept while its holder works: a clone attempt's or a synthesis job's, extended by a beat beside the
work (a provider call, a render), so the lease runs out only when its holder has stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from backend.errors import DatabaseUnavailable, LeaseLost, TooManyRequests

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def kept(extend: Callable[[], Awaitable[object]], every: float, what: str) -> AsyncIterator[None]:
    """Call `extend` every `every` seconds while the block runs (a third of the lease: two beats may fail).

    `extend` raises LeaseLost once someone else holds the lease (or the work ended): that is logged and the
    beat stops, and the holder's own fenced writes find the lease gone. A database outage or a busy pool
    (logged where detected) and any other failure are tried again on the next beat.
    """

    async def keep() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await extend()
            except LeaseLost:
                log.warning("%s: lease lost while working", what)
                return
            except (DatabaseUnavailable, TooManyRequests):
                pass  # the next beat tries again
            except Exception:
                log.exception("%s: could not extend the lease", what)

    task = asyncio.create_task(keep(), name=f"lease:{what}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
