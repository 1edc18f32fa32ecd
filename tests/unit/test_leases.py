"""A beat runs beside work as a timer, and a task only while a run is due; a lease kept by it stops at
LeaseLost and goes on through an outage, and work run under its guard is abandoned once the lease is lost and never
started once it is lost or has run out. Orderings are proved with later timers on the same loop: a timer
due earlier fires first, so a sentinel's firing means what was due before it has run."""

from __future__ import annotations

import asyncio
import logging

import pytest

from backend.errors import DatabaseUnavailable, LeaseLost, TooManyRequests
from backend.leases import Beat, Lease, kept

PAUSE = 0.01
BOUND = 5.0  # no wait here is unbounded


async def after(seconds: float) -> None:
    """Wait for a timer due `seconds` from now: every timer due before it has fired by then."""
    fired = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, fired.set)
    await asyncio.wait_for(fired.wait(), BOUND)


async def test_a_beat_runs_after_its_pause_then_after_each_pause_returned_until_none() -> None:
    runs: list[float] = []
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def step() -> float | None:
        runs.append(loop.time())
        if len(runs) == 3:
            done.set()
            return None
        return PAUSE * 2

    started = loop.time()
    beat = Beat(step, PAUSE, "test")
    await asyncio.wait_for(done.wait(), BOUND)
    await after(PAUSE * 10)  # a fourth run would have been due long before this
    assert len(runs) == 3
    # The loop may run a timer up to its clock's resolution early: a tenth of a pause is far more.
    assert runs[0] - started >= PAUSE * 0.9
    assert runs[1] - runs[0] >= PAUSE * 1.9
    await beat.stop()


async def test_a_beat_cancelled_before_it_is_due_never_runs() -> None:
    runs: list[str] = []

    async def step() -> float | None:
        runs.append("ran")
        return None

    Beat(step, PAUSE, "test").cancel()
    await after(PAUSE * 2)
    assert runs == []


async def test_stopping_a_beat_mid_run_cancels_the_run_and_waits_for_it() -> None:
    entered, ended = asyncio.Event(), asyncio.Event()

    async def step() -> float | None:
        entered.set()
        try:
            await asyncio.Event().wait()  # a statement that never answers
        finally:
            ended.set()
        return PAUSE

    beat = Beat(step, PAUSE, "test")
    await asyncio.wait_for(entered.wait(), BOUND)
    await asyncio.wait_for(beat.stop(), BOUND)
    assert ended.is_set()


async def test_a_kept_lease_stops_extending_once_it_is_lost(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    lost = asyncio.Event()

    async def extend() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            lost.set()
            raise LeaseLost

    with caplog.at_level(logging.WARNING, logger="backend.leases"):
        async with kept(extend, PAUSE, "attempt 1"):
            await asyncio.wait_for(lost.wait(), BOUND)
            await after(PAUSE * 5)  # three more beats would have been due by now
    assert calls == 2
    assert "attempt 1: lease lost while working" in caplog.text


async def test_a_kept_lease_goes_on_through_an_outage_and_stops_with_its_block() -> None:
    calls = 0
    third = asyncio.Event()

    async def extend() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            third.set()
        if calls == 1:
            raise DatabaseUnavailable

    async with kept(extend, PAUSE, "attempt 2"):
        await asyncio.wait_for(third.wait(), BOUND)
    ended_at = calls
    await after(PAUSE * 5)
    assert ended_at >= 3
    assert calls == ended_at


async def test_a_beat_that_met_a_busy_database_is_tried_again_within_half_a_beat() -> None:
    pause = PAUSE * 4
    calls = 0
    failed = asyncio.Event()

    async def extend() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            failed.set()
            raise TooManyRequests

    async with kept(extend, pause, "attempt 5"):
        await asyncio.wait_for(failed.wait(), BOUND)
        await after(pause / 2)  # a beat's pause later, the second call would be due after this
        assert calls == 2


async def test_a_guarded_call_is_abandoned_when_the_lease_is_lost_during_it() -> None:
    started, abandoned = asyncio.Event(), asyncio.Event()

    async def extend() -> None:
        raise LeaseLost

    async def create() -> str:
        started.set()
        try:
            await asyncio.Event().wait()  # a provider that has not answered yet
        finally:
            abandoned.set()
        return "voice"

    async with kept(extend, PAUSE, "attempt 3") as lease:
        with pytest.raises(LeaseLost):
            await asyncio.wait_for(lease.guard(create), BOUND)
    assert started.is_set()
    assert abandoned.is_set()


async def test_a_call_is_not_started_once_the_lease_is_lost() -> None:
    lost = asyncio.Event()
    calls: list[str] = []

    async def extend() -> None:
        lost.set()
        raise LeaseLost

    async def create() -> str:
        calls.append("create")
        return "voice"

    async with kept(extend, PAUSE, "attempt 4") as lease:
        await asyncio.wait_for(lost.wait(), BOUND)
        with pytest.raises(LeaseLost):
            await lease.guard(create)
    assert calls == []


async def test_a_lease_that_may_have_run_out_is_extended_before_a_call_and_the_call_refused_once_it_is_gone() -> None:
    extensions: list[str] = []
    calls: list[str] = []
    gone = False

    async def extend() -> None:
        extensions.append("extend")
        if gone:
            raise LeaseLost

    async def create() -> str:
        calls.append("create")
        return "voice"

    lease = Lease(extend, PAUSE, 3 * PAUSE)
    assert await lease.guard(create) == "voice"
    assert extensions == []
    await after(PAUSE * 2)  # no beat's extension was answered meanwhile (the database away): it may have run out
    assert await lease.guard(create) == "voice"
    assert extensions == ["extend"]
    await after(PAUSE * 4)
    gone = True
    with pytest.raises(LeaseLost):
        await lease.guard(create)
    assert calls == ["create", "create"]
    with pytest.raises(LeaseLost):
        await lease.guard(create)
    assert extensions == ["extend", "extend"], "a lease known lost is not asked again"


async def test_a_guarded_call_cancelled_from_outside_is_cancelled_not_lost() -> None:
    started = asyncio.Event()

    async def extend() -> None:
        return None

    lease = Lease(extend, BOUND, BOUND)

    async def create() -> None:
        started.set()
        await asyncio.Event().wait()

    call = asyncio.create_task(lease.guard(create))
    await asyncio.wait_for(started.wait(), BOUND)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
