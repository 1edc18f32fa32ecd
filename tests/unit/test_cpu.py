"""The CPU executor's fair queue: round robin between users (the one served least recently first), first in
first out within one (what is queued ahead before the rest), a queued call dropped when its caller goes away,
never more calls at once than threads, a second tier of niced threads for calls made `yielding`, and no thread
left once closed."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

import backend.cpu
from backend.cpu import BACKGROUND_NICE, CpuExecutor, long_calls, yielding

A, B, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
#: How long a blocked test call waits at most: only a broken executor ever waits this long.
BOUND_S = 20.0


class Gate:
    """A call that holds its thread until the test opens the gate, and says when it holds it."""

    def __init__(self) -> None:
        self.holding = asyncio.Event()
        self._open = threading.Event()
        self._loop = asyncio.get_running_loop()

    def hold(self) -> None:
        self._loop.call_soon_threadsafe(self.holding.set)
        if not self._open.wait(BOUND_S):
            raise TimeoutError("the gate was never opened")

    def open(self) -> None:
        self._open.set()


@contextlib.asynccontextmanager
async def held_thread(tier: bool = False) -> AsyncIterator[tuple[CpuExecutor, Callable[[], Awaitable[None]]]]:
    """An executor of one thread a tier, whose thread of the first tier (of the second, `yielding`, with `tier`) a
    call holds until `release()`: what is queued in that tier meanwhile waits. The block queues in that tier."""
    async with CpuExecutor(1) as one:
        with yielding(tier):
            gate = Gate()
            holding = one.submit(None, gate.hold)
            await asyncio.wait_for(gate.holding.wait(), BOUND_S)

            async def release() -> None:
                gate.open()
                await holding

            yield one, release


#: The ordering tests, run in each tier: the second keeps the same turns as the first.
TIERS = pytest.mark.parametrize("tier", [False, True], ids=["first tier", "yielding tier"])


def recorder(ran: list[str]) -> Callable[[str], str]:
    def record(label: str) -> str:
        ran.append(label)  # list.append is atomic: the threads never interleave inside it
        return label

    return record


def threads_of(cpu: CpuExecutor) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith(f"{cpu.name}-")]


def nice_here() -> int:
    """The nice value of the calling thread (Linux keeps one per thread)."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@TIERS
async def test_users_take_turns_and_each_users_calls_keep_their_order(tier: bool) -> None:
    async with held_thread(tier) as (one, release):
        ran: list[str] = []
        record = recorder(ran)
        # A queues three before B and C queue anything: B and C still go second and third.
        queued = [one.submit(owner, record, label) for owner, label in [(A, "a1"), (A, "a2"), (A, "a3")]]
        queued += [one.submit(B, record, "b1"), one.submit(C, record, "c1"), one.submit(B, record, "b2")]
        await release()
        assert await asyncio.gather(*queued) == ["a1", "a2", "a3", "b1", "c1", "b2"]
    assert ran == ["a1", "b1", "c1", "a2", "b2", "a3"]


@TIERS
async def test_a_call_queued_ahead_goes_before_its_users_other_waiting_calls_but_not_before_other_users(
    tier: bool,
) -> None:
    async with held_thread(tier) as (one, release):
        ran: list[str] = []
        record = recorder(ran)
        # A's later phrases and marks wait; A's next streams' first phrases go before them, in their order.
        queued = [one.submit(A, record, "a-later-1"), one.submit(A, record, "a-later-2")]
        queued += [one.submit(B, record, "b1")]
        queued += [one.submit_ahead(A, record, "a-first-1"), one.submit_ahead(A, record, "a-first-2")]
        await release()
        await asyncio.wait_for(asyncio.gather(*queued), BOUND_S)
    assert ran == ["a-first-1", "b1", "a-first-2", "a-later-1", "a-later-2"]


@TIERS
async def test_a_user_whose_lane_emptied_keeps_their_turn_before_a_user_served_since(tier: bool) -> None:
    async with held_thread(tier) as (one, release):
        ran: list[str] = []
        record = recorder(ran)
        gate = Gate()

        def b1() -> str:
            gate.hold()
            return record("b1")

        first = [one.submit(A, record, "a1"), one.submit(B, b1), one.submit(B, record, "b2")]
        await release()
        await asyncio.wait_for(gate.holding.wait(), BOUND_S)
        # A's lane is empty now (a1 ran), B's is not; B was served after A. A's next call, as a stream's next
        # phrase comes once its last is made, goes before B's next.
        second = one.submit(A, record, "a2")
        gate.open()
        await asyncio.gather(*first, second)
    assert ran == ["a1", "b1", "a2", "b2"]


@TIERS
async def test_a_call_whose_caller_went_away_is_dropped_before_it_starts(tier: bool) -> None:
    async with held_thread(tier) as (one, release):
        ran: list[str] = []
        record = recorder(ran)
        queued = asyncio.Event()

        async def client() -> str:
            queued.set()  # the call below is queued in this same step, before the task first waits
            return await one.run(A, record, "gone")

        task = asyncio.create_task(client())
        await queued.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Behind the dropped call in A's own lane: it would have run first. Dropped, it leaves A's lane empty and
        # gone, so A's next call opens a lane before B's and goes first; left in the lane, it would have taken A's
        # turn (its thread skipping it) and put B first.
        after = one.submit(A, record, "after")
        b = one.submit(B, record, "b")
        await release()
        assert await asyncio.wait_for(asyncio.gather(after, b), BOUND_S) == ["after", "b"]
    assert ran == ["after", "b"]


async def test_no_more_calls_run_at_once_than_the_executor_has_threads() -> None:
    async with CpuExecutor(2) as two:
        # Two calls meet inside the executor...
        pair = threading.Barrier(2)
        assert sorted(await asyncio.gather(*(two.run(A, pair.wait, BOUND_S) for _ in range(2)))) == [0, 1]
        # ...three never do: the third waits for a thread, so the two running give up and break the barrier.
        trio = threading.Barrier(3)
        outcomes = await asyncio.gather(
            *(two.run(owner, trio.wait, 2.0) for owner in (A, B, C)), return_exceptions=True
        )
    assert all(isinstance(outcome, threading.BrokenBarrierError) for outcome in outcomes), outcomes


async def test_a_call_returns_its_value_raises_its_error_and_sees_the_callers_context(cpu: CpuExecutor) -> None:
    tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant")
    tenant.set("ours")
    assert await cpu.run(A, tenant.get) == "ours"
    with pytest.raises(ZeroDivisionError):
        await cpu.run(A, lambda: 1 / 0)
    assert await cpu.run(None, sum, [1, 2, 3]) == 6


async def test_calls_made_yielding_run_on_niced_threads_of_their_own_and_the_rest_at_the_process_priority() -> None:
    ours = nice_here()
    async with CpuExecutor(1) as cpu:
        assert await cpu.run(A, nice_here) == ours
        with yielding(True):
            assert await cpu.run(A, nice_here) == min(19, ours + BACKGROUND_NICE)
        with yielding(False):
            assert await cpu.run(A, nice_here) == ours
        assert await cpu.run(B, nice_here) == ours
    assert nice_here() == ours  # the caller's own thread is untouched


async def test_every_thread_of_the_second_tier_is_niced_and_none_of_the_first() -> None:
    ours = nice_here()
    async with CpuExecutor(2) as two:
        assert len(threads_of(two)) == 8  # the four tiers' threads start with the executor
        for tier, expected in ((False, ours), (True, min(19, ours + BACKGROUND_NICE))):
            # Two calls that meet inside the executor run on its two threads of the tier at once.
            both = threading.Barrier(2)

            def met_at(barrier: threading.Barrier = both) -> tuple[str, int]:
                barrier.wait(BOUND_S)
                return threading.current_thread().name, nice_here()

            with yielding(tier):
                seen = dict(await asyncio.gather(two.run(A, met_at), two.run(B, met_at)))
            assert len(seen) == 2, seen
            assert set(seen.values()) == {expected}, seen


async def test_each_tier_keeps_its_own_turns() -> None:
    """A user just served in one tier keeps their place in the other."""
    async with held_thread(tier=True) as (one, release):
        with yielding(False):
            await one.run(A, str, "served in the first tier")  # the first tier's own thread is free
        ran: list[str] = []
        record = recorder(ran)
        queued = [one.submit(A, record, "a"), one.submit(B, record, "b")]
        await release()
        await asyncio.wait_for(asyncio.gather(*queued), BOUND_S)
    assert ran == ["a", "b"]


async def test_a_thread_the_system_cannot_start_fails_the_executor_and_leaves_no_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = threading.Thread.start
    started: list[threading.Thread] = []

    def third_refused(thread: threading.Thread) -> None:
        if len(started) == 2:
            raise RuntimeError("can't start new thread")
        started.append(thread)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", third_refused)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        CpuExecutor(2)  # the first tier's two started, the second tier's first refused
    assert len(started) == 2
    for thread in started:
        thread.join(BOUND_S)
        assert not thread.is_alive()


async def test_a_system_that_refuses_the_nice_value_still_runs_every_call_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refused(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refused)
    monkeypatch.setattr(backend.cpu, "_WARNED", False)
    ours = nice_here()
    with caplog.at_level(logging.WARNING, logger="backend.cpu"):
        for _ in range(2):
            async with CpuExecutor(2) as two, contextlib.AsyncExitStack():
                with yielding(True):
                    assert await asyncio.gather(*(two.run(owner, nice_here) for owner in (A, B, C))) == [ours] * 3
    warnings = [record.getMessage() for record in caplog.records if record.name == "backend.cpu"]
    assert warnings == [
        "the CPU executor's yielding threads keep their process's priority: [Errno 1] Operation not permitted"
    ]


async def test_the_two_tiers_never_wait_for_each_other() -> None:
    async with held_thread() as (one, release):
        # The first tier's only thread is held: a call made yielding runs all the same, on a thread of its own...
        with yielding(True):
            gate = Gate()
            held = one.submit(A, gate.hold)
            await asyncio.wait_for(gate.holding.wait(), BOUND_S)
        # ...and with that one held too, neither tier's waiting call runs until its own tier's thread is free.
        with yielding(True):
            second = one.submit(B, str, "second tier")
        first = one.submit(B, str, "first tier")
        await release()
        assert await asyncio.wait_for(first, BOUND_S) == "first tier"
        assert not second.done()
        gate.open()
        assert await asyncio.wait_for(second, BOUND_S) == "second tier"
        await held


async def test_closing_finishes_what_runs_refuses_what_waits_and_ends_every_thread() -> None:
    cpu = CpuExecutor(1)
    assert len(threads_of(cpu)) == 4
    gate = Gate()

    def held_then_finished() -> str:
        gate.hold()
        return "finished"

    running = cpu.submit(A, held_then_finished)
    await asyncio.wait_for(gate.holding.wait(), BOUND_S)
    waiting = cpu.submit(B, str, "never")
    also = Gate()
    with yielding(True):
        also_running = cpu.submit(A, also.hold)
        await asyncio.wait_for(also.holding.wait(), BOUND_S)
        also_waiting = cpu.submit(B, str, "never either")
    closing = asyncio.create_task(cpu.aclose())
    for refused in (waiting, also_waiting):
        with pytest.raises(RuntimeError, match="closed before the call started"):
            await refused
    assert not closing.done()  # the running calls hold it
    gate.open()
    assert await running == "finished"
    assert not closing.done()
    also.open()
    await asyncio.wait_for(closing, BOUND_S)
    await also_running
    assert threads_of(cpu) == []
    with pytest.raises(RuntimeError, match="closed"):
        await cpu.run(A, str, "too late")


def tier_here() -> tuple[str, int]:
    """The tier of the calling thread, by its name, and its nice value."""
    name = threading.current_thread().name
    tiers = {"-long-": "long", "-queued-": "queued", "-yielding-": "yielding"}
    tier = next((tier for part, tier in tiers.items() if part in name), "first")
    return tier, nice_here()


async def test_long_calls_run_on_threads_of_their_own_at_the_process_priority_yielding_or_not() -> None:
    ours = nice_here()
    async with CpuExecutor(1) as cpu:
        with long_calls():
            assert await cpu.run(A, tier_here) == ("long", ours)
            with yielding(True):
                assert await cpu.run(A, tier_here) == ("long", ours)
        assert await cpu.run(A, tier_here) == ("first", ours), "outside the block: as the caller was"


async def test_no_short_call_waits_for_a_long_one() -> None:
    async with CpuExecutor(1) as cpu:
        gate = Gate()
        with long_calls():
            long = cpu.submit(A, gate.hold)
        await asyncio.wait_for(gate.holding.wait(), BOUND_S)
        # The long call holds its tier's only thread: B's short call runs all the same, and so does A's own.
        assert await asyncio.wait_for(cpu.run(B, tier_here), BOUND_S) == ("first", nice_here())
        assert await asyncio.wait_for(cpu.run(A, str, "short"), BOUND_S) == "short"
        gate.open()
        await long


async def test_a_long_call_a_request_waits_on_never_waits_for_a_queued_one_nor_the_other_way() -> None:
    """A reading (a person waits on the page) never queues behind other users' sample checks (a queue's consumer's
    long calls), nor an enrolment's voiceprints behind readings: each kind holds a tier of its own."""
    ours = nice_here()
    async with CpuExecutor(1) as cpu:
        for held_queued in (True, False):
            gate = Gate()
            with long_calls(queued=held_queued):
                held = cpu.submit(A, gate.hold)
            await asyncio.wait_for(gate.holding.wait(), BOUND_S)
            with long_calls(queued=not held_queued):
                assert await asyncio.wait_for(cpu.run(B, tier_here), BOUND_S) == (
                    "queued" if not held_queued else "long",
                    ours,
                )
            gate.open()
            await held


async def test_long_calls_take_turns_between_users() -> None:
    async with CpuExecutor(1) as cpu:
        gate = Gate()
        ran: list[str] = []
        record = recorder(ran)
        with long_calls():
            held = cpu.submit(A, gate.hold)
            await asyncio.wait_for(gate.holding.wait(), BOUND_S)
            # A floods while their first is heard, and B's one call comes after: it waits for that one of A's only.
            calls = [cpu.submit(A, record, f"A{n}") for n in range(3)] + [cpu.submit(B, record, "B")]
        gate.open()
        await held
        await asyncio.wait_for(asyncio.gather(*calls), BOUND_S)
    assert ran == ["B", "A0", "A1", "A2"]
