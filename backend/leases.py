"""A lease kept while its holder works: a clone attempt's or a synthesis job's, extended by a beat beside the
work (a provider call, a render), so the lease runs out only when its holder has stopped; and work that must not
outlive it (a provider's create) run only while it holds (`Lease.guard`). A queue message's invisibility is kept
the same way (`queue_consumers.runtime`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from backend.errors import DatabaseUnavailable, LeaseLost, TooManyRequests

log = logging.getLogger(__name__)
_T = TypeVar("_T")
#: A beat whose extension met an outage or a busy pool is tried again after this fraction of a beat.
_SOONER = 4


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


class Lease:
    """What `kept` hands its block: until when this process knows the lease to hold, and whether it was lost.

    The lease as the database has it runs out no sooner than this process's reckoning: an extension counts from when
    it was sent, not from when it was answered, and one without an answer does not count at all.
    """

    def __init__(self, extend: Callable[[], Awaitable[object]], known_for: float, length: float) -> None:
        self._extend = extend
        self._until = time.monotonic() + known_for
        self._length = length
        self._lost = False
        self._guarded: asyncio.Task[object] | None = None
        self._cut = False

    async def extend(self) -> None:
        """Extend the lease now; LeaseLost (and the lease lost) when it is no longer held."""
        sent_at = time.monotonic()
        try:
            await self._extend()
        except LeaseLost:
            self.lose()
            raise
        self._until = max(self._until, sent_at + self._length)

    def lose(self) -> None:
        """The lease is someone else's, or its work is gone: abandon the guarded call under way."""
        self._lost = True
        if self._guarded is not None:
            self._cut = True
            self._guarded.cancel()

    async def guard(self, work: Callable[[], Awaitable[_T]]) -> _T:
        """`work()` (a provider call) done only while the lease holds: it is extended first when it may have run out
        by this process's reckoning, LeaseLost instead of the call once it is lost, and LeaseLost, the call abandoned
        where it stands, when it is lost during it. A user's erasure waits out the leases of their work and then looks
        for what it made: nothing it starts later escapes that look."""
        if self._lost:
            raise LeaseLost
        if time.monotonic() >= self._until:
            await self.extend()
        task = asyncio.current_task()
        self._guarded = task
        try:
            return await work()
        except asyncio.CancelledError:
            # The cut's cancel, not anyone else's: a cancel of the holder from outside is passed on.
            if self._cut and task is not None and task.uncancel() == 0:
                raise LeaseLost from None
            raise
        finally:
            self._guarded = None
            self._cut = False


@contextlib.asynccontextmanager
async def kept(extend: Callable[[], Awaitable[object]], every: float, what: str) -> AsyncIterator[Lease]:
    """Call `extend` every `every` seconds while the block runs (a third of the lease: two beats may fail), and
    hand the block the `Lease`, which it holds for two thirds of its length at least when the block starts.

    `extend` raises LeaseLost once someone else holds the lease (or the work ended): that is logged, the beat stops,
    a call under `Lease.guard` is abandoned, and the holder's own fenced writes find the lease gone. A database
    outage or a busy pool (logged where detected) is tried again after a quarter of a beat, any other failure on
    the next beat.
    """
    lease = Lease(extend, 2 * every, 3 * every)

    async def keep() -> float | None:
        try:
            await lease.extend()
        except LeaseLost:
            log.warning("%s: lease lost while working", what)
            return None
        except (DatabaseUnavailable, TooManyRequests):
            # Tried again sooner than a beat: two beats that met a busy pool (a burst beside an outage's end) let
            # the lease lapse under the work still holding it.
            return every / _SOONER
        except Exception:
            log.exception("%s: could not extend the lease", what)
        return every

    beat = Beat(keep, every, f"lease:{what}")
    try:
        yield lease
    finally:
        await beat.stop()
