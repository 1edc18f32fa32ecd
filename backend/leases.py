"""A lease kept while its holder works: a clone attempt's or a synthesis job's, extended by a beat beside the
work (a provider call, a render), so the lease runs out only when its holder has stopped. A queue message's
invisibility is kept the same way (`queue_consumers.runtime`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from backend.errors import DatabaseUnavailable, LeaseLost, TooManyRequests

log = logging.getLogger(__name__)


class Beat:
    """Runs `step` `pause` seconds from now, then again after the pause each run returns, until a run
    returns None or the beat is cancelled. Between runs it is a timer, not a task: most work ends before
    its first beat, so a task waiting beside each piece of work would be made and cancelled for nothing
    (a queue message's and an attempt's keepers, on every delivery). `step` handles its own errors (one
    that escapes ends the beat, and is logged)."""

    def __init__(self, step: Callable[[], Awaitable[float | None]], pause: float, what: str) -> None:
        self._step = step
        self._what = what
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self._cancelled = False
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(pause, self._due)

    def _due(self) -> None:
        self._timer = None
        self._task = self._loop.create_task(self._run(), name=self._what)

    async def _run(self) -> None:
        try:
            pause = await self._step()
        except Exception:
            log.exception("%s: beat failed", self._what)
            pause = None
        self._task = None
        if pause is not None and not self._cancelled:
            self._timer = self._loop.call_later(pause, self._due)

    def cancel(self) -> None:
        """Stop beating; a run under way is cancelled without waiting for it."""
        self._cancelled = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        """Stop beating, and wait for a run under way to end."""
        task = self._task
        self.cancel()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def kept(extend: Callable[[], Awaitable[object]], every: float, what: str) -> AsyncIterator[None]:
    """Call `extend` every `every` seconds while the block runs (a third of the lease: two beats may fail).

    `extend` raises LeaseLost once someone else holds the lease (or the work ended): that is logged and the
    beat stops, and the holder's own fenced writes find the lease gone. A database outage or a busy pool
    (logged where detected) and any other failure are tried again on the next beat.
    """

    async def keep() -> float | None:
        try:
            await extend()
        except LeaseLost:
            log.warning("%s: lease lost while working", what)
            return None
        except (DatabaseUnavailable, TooManyRequests):
            pass  # the next beat tries again
        except Exception:
            log.exception("%s: could not extend the lease", what)
        return every

    beat = Beat(keep, every, f"lease:{what}")
    try:
        yield
    finally:
        await beat.stop()
