"""A bounded pool of threads for CPU-bound work (local renders, sample checks, joining and signing audio),
fed from a fair queue.

asyncio's default executor (`asyncio.to_thread`) serves everyone first come first served, so one user's many
long streams would make another user's one sentence wait behind all of them. Here each item is tagged with the
user it is for (their owner id; `None` for system work, which has a lane of its own), and the threads take
the next item round robin between the lanes that have work waiting, first in first out within one lane.
Round robin by recency: the next item is from the waiting lane whose user was served least recently, so a
user whose lane empties between items (a stream asks for its next phrase once the last is made) keeps
their place in the rotation rather than rejoining at its back. Whoever else is queued, a user's item waits
for at most one item of each other user. A caller that splits long work into pieces (a stream renders
phrase by phrase) lets others' items run between its pieces.

One executor per process, owned by what runs the process (the app's lifespan, `voicegate worker`) and closed
with it: `aclose` drops what has not started and returns once every thread has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import itertools
import os
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
#: Whom a piece of work is for: a user's id, or None for system work.
Owner = uuid.UUID | None

_SERIAL: Final = itertools.count(1)
#: Users whose last turn is remembered; one forgotten had the oldest turn, and counts as never served.
_REMEMBERED: Final = 4096


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, which containers and `taskset` narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers(*, serves_api: bool) -> int:
    """The executor's threads when VOICEGATE_CPU_WORKERS does not say. A process that serves the API (`voicegate
    up`, `serve`) takes one fewer than its cores, and at least one: the event loop (and in `voicegate up`
    Postgres) keeps a core: with a thread on every busy core, a user's render and sample check slow down far
    more beside another user's work than with one fewer. A worker (`voicegate worker`) answers no request: it
    takes every core, and its checks go faster on two than on one (bench/sample_checks.py)."""
    cores = usable_cores()
    return max(1, cores - 1) if serves_api else cores


class _Item:
    """One queued call, and the future its caller awaits on its own loop."""

    __slots__ = ("ahead", "call", "future", "loop", "owner")

    def __init__(
        self, owner: Owner, call: Callable[[], Any], loop: asyncio.AbstractEventLoop, *, ahead: bool = False
    ) -> None:
        self.owner = owner
        self.call = call
        self.ahead = ahead
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()

    def run(self) -> None:
        """Run the call on this thread and hand its outcome to the caller's loop."""
        if self.future.cancelled():  # read across threads: a hint that saves the work, settled on the loop
            return
        try:
            result, error = self.call(), None
        except BaseException as exc:
            result, error = None, exc
        self._post(_settle, self.future, result, error)

    def refuse(self) -> None:
        """Fail the caller's wait: the executor closed before the call started."""
        self._post(_settle, self.future, None, RuntimeError("the CPU executor closed before the call started"))

    def _post(self, callback: Callable[..., object], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody is waiting any more
            self.loop.call_soon_threadsafe(callback, *args)


def _settle(future: asyncio.Future[Any], result: object, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled while the call ran
        return
    if error is None:
        future.set_result(result)
    elif isinstance(error, StopIteration):  # a future cannot carry it (it would end a coroutine)
        future.set_exception(RuntimeError("the call raised StopIteration"))
    else:
        future.set_exception(error)


class CpuExecutor:
    """`workers` threads running CPU-bound calls, taken round robin between the users that have calls waiting.

    `await cpu.run(owner, fn, *args)` queues `fn(*args)` in `owner`'s lane and returns what it returns (or
    raises what it raises), with the caller's context variables, as `asyncio.to_thread` does. A caller
    cancelled while its call waits takes the call out of the queue (a client that went away leaves no work
    behind); one cancelled while its call runs returns at once, and the thread finishes the call (a thread
    cannot be interrupted).
    """

    def __init__(self, workers: int, *, name: str = "voicegate-cpu") -> None:
        if workers < 1:
            raise ValueError("a CPU executor needs at least one worker thread")
        self.workers = workers
        #: Every thread of this executor is named `<name>-<n>`; unique per executor in a process.
        self.name = f"{name}-{next(_SERIAL)}"
        self._lock = threading.Lock()
        self._waiting = threading.Condition(self._lock)
        self._lanes: dict[Owner, deque[_Item]] = {}  # lanes with work waiting, in the order they opened
        self._turns = itertools.count(1)
        # When each user was last served, least recently first.
        self._served: OrderedDict[Owner, int] = OrderedDict()
        self._closed = False
        self._alive = workers
        self._when_ended: list[Callable[[], None]] = []
        self._threads = [
            threading.Thread(target=self._work, name=f"{self.name}-{n}", daemon=True) for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, owner: Owner, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Queue `fn(*args, **kwargs)` in `owner`'s lane now; the future (of the running loop) is its outcome.
        Cancelling the future before a thread has taken the call takes the call out of the queue.
        RuntimeError once the executor is closed."""
        future: asyncio.Future[T] = self._queue(
            owner, functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        )
        return future

    async def run(self, owner: Owner, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on one of the threads, queued in `owner`'s lane (see `submit`)."""
        return await self.submit(owner, fn, *args, **kwargs)

    def submit_ahead(self, owner: Owner, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """`submit`, queued ahead of the calls waiting in `owner`'s lane that were not queued ahead themselves:
        for work its user hears nothing before (a stream's first phrase), which would otherwise wait behind the
        same user's other streams' later phrases and marks. Between users the turns are as ever."""
        future: asyncio.Future[T] = self._queue(
            owner, functools.partial(contextvars.copy_context().run, fn, *args, **kwargs), ahead=True
        )
        return future

    def _queue(self, owner: Owner, call: Callable[[], Any], *, ahead: bool = False) -> asyncio.Future[Any]:
        item = _Item(owner, call, asyncio.get_running_loop(), ahead=ahead)
        item.future.add_done_callback(functools.partial(self._drop, item))
        with self._lock:
            if self._closed:
                raise RuntimeError("the CPU executor is closed")
            lane = self._lanes.get(owner)
            if lane is None:
                lane = self._lanes[owner] = deque()
            if ahead:  # behind the calls queued ahead before it, first in first out among them
                lane.insert(next((n for n, queued in enumerate(lane) if not queued.ahead), len(lane)), item)
            else:
                lane.append(item)
            self._waiting.notify()
        return item.future

    async def aclose(self) -> None:
        """Take no more work, fail the waits of calls not started (RuntimeError), and return once the calls
        running have finished and every thread has ended."""
        loop = asyncio.get_running_loop()
        ended = loop.create_future()
        with self._lock:
            self._closed = True
            dropped = [item for lane in self._lanes.values() for item in lane]
            self._lanes.clear()
            self._waiting.notify_all()
            if self._alive:
                self._when_ended.append(functools.partial(_post_result, loop, ended))
            else:
                ended.set_result(None)
        for item in dropped:
            item.refuse()
        await ended
        for thread in self._threads:
            thread.join()  # each has left its loop: this returns at once

    async def __aenter__(self) -> CpuExecutor:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _drop(self, item: _Item, future: asyncio.Future[Any]) -> None:
        """Take a call whose caller went away (its future cancelled) out of its lane, unless a thread has it."""
        if not future.cancelled():
            return
        with self._lock:
            lane = self._lanes.get(item.owner)
            if lane is None or item not in lane:
                return
            lane.remove(item)
            if not lane:
                del self._lanes[item.owner]

    def _next(self) -> _Item | None:
        """The next call, from the lane served least recently (with the lock held); None once closed and empty."""
        while not self._lanes and not self._closed:
            self._waiting.wait()
        if not self._lanes:
            return None
        owner = min(self._lanes, key=lambda waiting: self._served.get(waiting, 0))
        lane = self._lanes[owner]
        item = lane.popleft()
        if not lane:
            del self._lanes[owner]
        self._served[owner] = next(self._turns)
        self._served.move_to_end(owner)
        if len(self._served) > _REMEMBERED:
            self._served.popitem(last=False)
        return item

    def _work(self) -> None:
        try:
            while True:
                with self._lock:
                    item = self._next()
                if item is None:
                    return
                item.run()
        finally:
            with self._lock:
                self._alive -= 1
                callbacks = self._when_ended if not self._alive else []
            for callback in callbacks:
                callback()


def _post_result(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
    def resolve() -> None:
        if not future.done():
            future.set_result(None)

    with contextlib.suppress(RuntimeError):  # the loop that waited is closed
        loop.call_soon_threadsafe(resolve)
