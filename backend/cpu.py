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

That order holds within one process; another process's threads (the other workers, the API's, Postgres) share the
same cores at the kernel's say. So work done for a user who already has other work in hand (one job of their many:
`yielding`) is queued in a second tier, whose threads run niced (`BACKGROUND_NICE` above the process, 19 at most):
on a busy core the kernel weighs each at about a 68th of a thread at nice 0, and on idle cores they run as fast as
the rest. A flood of one user's jobs is slowed, never stopped (its leases are kept by the event loop). Nice values
count only within one cgroup, a niced thread holding the GIL holds up its process until it runs again, and a
program it starts inherits its nice value: docs/limits.md ("Sharing the server").

A long call (`long_calls`: seconds of CPU in one call, which no thread can interrupt) waits in a tier of its own,
at the process's priority, so that no short call (a render's phrase, a mark) queues behind one; two such tiers, for
the long calls a request waits on (a consent reading, a provenance check) and for those a queue's consumer makes
(`queued`: a sample's check, an enrolment's voiceprints, a `local` voice's profile), so that neither kind waits
behind the other. Not niced: a niced thread holding the GIL (pocketsphinx holds it a third of the time) would hold
up the process, and CTranslate2 computes on a thread of its own. Every tier starts with the executor.

One executor per process, owned by what runs the process (the app's lifespan, `voicegate worker`) and closed
with it: `aclose` drops what has not started and returns once every thread has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import itertools
import logging
import os
import sys
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Final, Literal, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
#: Whom a piece of work is for: a user's id, or None for system work.
Owner = uuid.UUID | None

_SERIAL: Final = itertools.count(1)
#: Users whose last turn is remembered; one forgotten had the oldest turn, and counts as never served.
_REMEMBERED: Final = 4096
#: How much nicer the second tier's threads are than their process (19 at most): the kernel weighs a thread at
#: nice 19 at 15 against 1,024 at nice 0 (at 10, 110). bench/spend.py's `fair` phase chose it: docs/benchmarks.md.
BACKGROUND_NICE: Final = 19
#: Set (`yielding`) while work is done for a user who has other work in hand: their calls go to the second tier.
_YIELDING: ContextVar[bool] = ContextVar("voicegate_cpu_yielding", default=False)
#: Set (`long_calls`) for a long call: "asked" (a request waits on it) or "queued" (a queue's consumer makes it); it
#: goes to that tier of long calls, whether or not `yielding`.
_LONG: ContextVar[Literal["asked", "queued"] | None] = ContextVar("voicegate_cpu_long", default=None)

log = logging.getLogger(__name__)


@contextlib.contextmanager
def yielding(yes: bool) -> Iterator[None]:
    """Within the block, if `yes`, CPU calls queue in the executors' second tier, weighed below other users' work
    on the machine's busy cores (see the module docstring): for a user who has other work in hand."""
    token = _YIELDING.set(yes)
    try:
        yield
    finally:
        _YIELDING.reset(token)


@contextlib.contextmanager
def long_calls(*, queued: bool = False) -> Iterator[None]:
    """Within the block, CPU calls are long calls (seconds of CPU in one call): they queue in the executors' tier of
    the long calls a request waits on (a reading of a consent phrase, a file's provenance check), or, if `queued`,
    in that of the long calls a queue's consumer makes (a sample's check, an enrolment's voiceprints; see the module
    docstring). A task created within the block inherits it, as it does every context variable: make only the long
    call itself inside."""
    token = _LONG.set("queued" if queued else "asked")
    try:
        yield
    finally:
        _LONG.reset(token)


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

    __slots__ = ("ahead", "call", "future", "loop", "owner", "tier")

    def __init__(
        self, tier: _Tier, owner: Owner, call: Callable[[], Any], loop: asyncio.AbstractEventLoop, *, ahead: bool
    ) -> None:
        self.tier = tier
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


class _Tier:
    """One tier's lanes with work waiting (in the order they opened), when each of its users was last served in it
    (least recently first: each tier keeps its own turns), and the condition its threads wait on (under the
    executor's lock)."""

    __slots__ = ("lanes", "served", "suffix", "waiting")

    def __init__(self, lock: threading.Lock, suffix: str) -> None:
        #: What its threads' names add to the executor's.
        self.suffix = suffix
        self.lanes: dict[Owner, deque[_Item]] = {}
        self.served: OrderedDict[Owner, int] = OrderedDict()
        self.waiting = threading.Condition(lock)


class CpuExecutor:
    """`workers` threads running CPU-bound calls, taken round robin between the users that have calls waiting;
    as many again, niced, for calls queued while `yielding`, and as many again for each of the two kinds of long calls
    (`long_calls`; see the module docstring).

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
        #: Every thread of this executor is named `<name>-<n>` (the second tier's `<name>-yielding-<n>`, the long
        #: calls' `<name>-long-<n>`, the queued long calls' `<name>-queued-<n>`); unique per executor in a process.
        self.name = f"{name}-{next(_SERIAL)}"
        self._lock = threading.Lock()
        self._first = _Tier(self._lock, "")
        self._second = _Tier(self._lock, "-yielding")
        self._long = _Tier(self._lock, "-long")
        self._queued = _Tier(self._lock, "-queued")
        self._turns = itertools.count(1)
        self._closed = False
        self._alive = 0
        self._when_ended: list[Callable[[], None]] = []
        self._threads: list[threading.Thread] = []
        for tier in self._tiers():
            self._start(tier)

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
        long = _LONG.get()
        if long is not None:
            tier = self._queued if long == "queued" else self._long
        else:
            tier = self._second if _YIELDING.get() else self._first
        item = _Item(tier, owner, call, asyncio.get_running_loop(), ahead=ahead)
        item.future.add_done_callback(functools.partial(self._drop, item))
        with self._lock:
            if self._closed:
                raise RuntimeError("the CPU executor is closed")
            lane = tier.lanes.get(owner)
            if lane is None:
                lane = tier.lanes[owner] = deque()
            if ahead:  # behind the calls queued ahead before it, first in first out among them
                lane.insert(next((n for n, queued in enumerate(lane) if not queued.ahead), len(lane)), item)
            else:
                lane.append(item)
            tier.waiting.notify()
        return item.future

    def _start(self, tier: _Tier) -> None:
        """Start `tier`'s threads, each counted alive as it starts (a thread the system cannot start fails the
        executor's construction, before any call was taken, and ends the ones started)."""
        label = self.name + tier.suffix
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, args=(tier,), name=f"{label}-{n}", daemon=True)
            with self._lock:
                self._alive += 1
            try:
                thread.start()
            except BaseException:
                with self._lock:
                    self._alive -= 1
                self._stop_started()
                raise
            self._threads.append(thread)

    def _stop_started(self) -> None:
        """End the threads started so far (the construction failed): nothing was queued, so each leaves at once."""
        with self._lock:
            self._closed = True
            for tier in self._tiers():
                tier.waiting.notify_all()
        for thread in self._threads:
            thread.join()

    async def aclose(self) -> None:
        """Take no more work, fail the waits of calls not started (RuntimeError), and return once the calls
        running have finished and every thread has ended."""
        loop = asyncio.get_running_loop()
        ended = loop.create_future()
        with self._lock:
            self._closed = True
            dropped = []
            for tier in self._tiers():
                dropped += [item for lane in tier.lanes.values() for item in lane]
                tier.lanes.clear()
                tier.waiting.notify_all()
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
            lanes = item.tier.lanes
            lane = lanes.get(item.owner)
            if lane is None or item not in lane:
                return
            lane.remove(item)
            if not lane:
                del lanes[item.owner]

    def _tiers(self) -> tuple[_Tier, _Tier, _Tier, _Tier]:
        return self._first, self._second, self._long, self._queued

    def _next(self, tier: _Tier) -> _Item | None:
        """`tier`'s next call, from the lane served least recently (with the lock held); None once closed and
        empty."""
        while not tier.lanes and not self._closed:
            tier.waiting.wait()
        if not tier.lanes:
            return None
        owner = min(tier.lanes, key=lambda waiting: tier.served.get(waiting, 0))
        lane = tier.lanes[owner]
        item = lane.popleft()
        if not lane:
            del tier.lanes[owner]
        tier.served[owner] = next(self._turns)
        tier.served.move_to_end(owner)
        if len(tier.served) > _REMEMBERED:
            tier.served.popitem(last=False)
        return item

    def _work(self, tier: _Tier) -> None:
        try:
            if tier is self._second:
                _lower_this_thread()
            while True:
                with self._lock:
                    item = self._next(tier)
                if item is None:
                    return
                item.run()
        finally:
            with self._lock:
                self._alive -= 1
                callbacks = self._when_ended if not self._alive else []
            for callback in callbacks:
                callback()


def _lower_this_thread() -> None:
    """Raise the calling thread's nice value by BACKGROUND_NICE (to 19 at most). Linux keeps one per thread;
    elsewhere the call would name a process, so the thread keeps its priority (and the tier is only a queue of its
    own), as it does where the system refuses (a seccomp profile): said once per process."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + BACKGROUND_NICE))
    except Exception as exc:  # whatever it is, the thread must go on serving its tier
        global _WARNED  # once per process, from whichever thread meets it first
        with _WARNING:
            warned, _WARNED = _WARNED, True
        if not warned:
            log.warning("the CPU executor's yielding threads keep their process's priority: %s", exc)


_WARNING: Final = threading.Lock()
_WARNED = False


def _post_result(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
    def resolve() -> None:
        if not future.done():
            future.set_result(None)

    with contextlib.suppress(RuntimeError):  # the loop that waited is closed
        loop.call_soon_threadsafe(resolve)
