"""Admission to the database (issue 45): refused at once while it is out of reach, one probe watching for its
return, then a window that opens as admitted requests succeed."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

import pytest

from backend.db import admission as admission_module
from backend.db.admission import FIRST_WINDOW, Admission
from backend.errors import DatabaseUnavailable
from backend.outages import Outage

MAX_SIZE = 12
#: Longest wait for something the test waits on.
WAIT = 5.0


@dataclass
class Pool:
    """What Admission reads of a pool."""

    timeout: float = 0.2
    max_size: int = MAX_SIZE


@dataclass
class Database:
    """What Admission reads of the database, and the probe's view of it: out of reach until `back` is set."""

    outage: Outage
    pool: Pool = field(default_factory=Pool)
    back: bool = False
    probes: int = 0
    probed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def ping(self) -> None:
        async with self.probed:
            self.probes += 1
            self.probed.notify_all()
        if not self.back:
            raise DatabaseUnavailable
        self.outage.recovered()

    async def probed_at_least(self, times: int) -> None:
        async with asyncio.timeout(WAIT), self.probed:
            await self.probed.wait_for(lambda: self.probes >= times)


@dataclass
class Requests:
    """Requests that hold their place until released, noting when each is admitted."""

    admission: Admission
    admitted: list[str] = field(default_factory=list)
    entered: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def run(self, name: str, release: asyncio.Event | None = None, *, fail: bool = False) -> None:
        async with self.admission.admitted():
            async with self.entered:
                self.admitted.append(name)
                self.entered.notify_all()
            if release is not None:
                await release.wait()
            if fail:
                raise DatabaseUnavailable("failed: the window stays as it is")

    async def until_admitted(self, count: int) -> None:
        async with asyncio.timeout(WAIT), self.entered:
            await self.entered.wait_for(lambda: len(self.admitted) >= count)


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Database:
    db = Database(Outage("database"))
    # Nobody in this process heard from the database since it went away.
    monkeypatch.setattr(admission_module, "last_answer_at", lambda: -math.inf)
    return db


def down(db: Database) -> None:
    db.outage.failed(DatabaseUnavailable("a unit found it out of reach"))


async def refuse_one(admission: Admission) -> None:
    with pytest.raises(DatabaseUnavailable, match="unreachable"):
        async with admission.admitted():
            raise AssertionError("admitted while the database is out of reach")


async def recovered_admission(db: Database) -> Admission:
    """An admission that refused a request in an outage, whose probe then saw it end."""
    admission = Admission(db, outage=db.outage, probe_every=0.01)  # type: ignore[arg-type]
    down(db)
    await refuse_one(admission)
    db.back = True
    assert admission._probe is not None
    async with asyncio.timeout(WAIT):
        await admission._probe
    assert not db.outage.down
    return admission


async def waiting(requests: Requests, name: str) -> asyncio.Task[None]:
    """`name`'s request, started and in line for a place (a task runs to its first wait as the loop turns)."""
    task = asyncio.create_task(requests.run(name))
    in_line = len(requests.admission._waiting) + 1
    await asyncio.sleep(0)
    assert len(requests.admission._waiting) == in_line
    return task


async def test_requests_are_refused_at_once_while_the_database_is_out_of_reach_and_one_probe_watches(
    database: Database,
) -> None:
    admission = Admission(database, outage=database.outage, probe_every=0.01)  # type: ignore[arg-type]
    async with admission.admitted():
        pass  # the database answers: admitted, no window
    assert admission.window is None
    down(database)
    loop = asyncio.get_running_loop()
    probes: set[object] = set()
    for _ in range(20):
        started = loop.time()
        await refuse_one(admission)
        assert loop.time() - started < 0.05
        probes.add(admission._probe)
    assert admission.refused == 20
    assert len(probes) == 1, "one probe, however many requests are refused"
    await database.probed_at_least(3)
    database.back = True
    await database.probed_at_least(database.probes + 1)
    assert not database.outage.down, "the probe's answer ended the outage"
    async with admission.admitted():
        assert admission.window == FIRST_WINDOW, "the first request after the outage opens the ramp"
    await admission.aclose()


async def test_a_failure_of_one_unit_while_others_get_answers_refuses_nobody(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    admission = Admission(database, outage=database.outage)  # type: ignore[arg-type]
    down(database)
    monkeypatch.setattr(admission_module, "last_answer_at", asyncio.get_running_loop().time)
    async with admission.admitted():
        pass
    assert admission.refused == 0
    assert admission._probe is None


async def test_after_an_outage_the_window_opens_as_requests_succeed(database: Database) -> None:
    admission = await recovered_admission(database)
    requests = Requests(admission)
    release = asyncio.Event()
    first = [asyncio.create_task(requests.run(f"r{n}", release)) for n in range(FIRST_WINDOW + 3)]
    await requests.until_admitted(FIRST_WINDOW)
    await asyncio.sleep(0)  # every task has run to its first wait
    assert (admission.in_flight, len(admission._waiting)) == (FIRST_WINDOW, 3), "the first window, the rest in line"
    release.set()
    await asyncio.gather(*first)
    assert admission.window == FIRST_WINDOW + len(first), "each success widens the window by one"
    while admission.window is not None:
        assert admission.window < MAX_SIZE
        await requests.run(f"after {admission.window}")
    assert len(requests.admitted) == MAX_SIZE - FIRST_WINDOW, "the ramp ends once the window is as wide as the pool"
    await admission.aclose()


async def test_a_request_that_finds_no_place_in_time_is_refused_and_a_failure_does_not_widen(
    database: Database,
) -> None:
    admission = await recovered_admission(database)
    requests = Requests(admission)
    release = asyncio.Event()
    holders = [asyncio.create_task(requests.run(f"h{n}", release, fail=True)) for n in range(FIRST_WINDOW)]
    await requests.until_admitted(FIRST_WINDOW)
    with pytest.raises(DatabaseUnavailable, match="coming back"):
        async with admission.admitted():
            raise AssertionError("admitted past the window")
    release.set()
    results = await asyncio.gather(*holders, return_exceptions=True)
    assert all(isinstance(r, DatabaseUnavailable) for r in results)
    assert admission.window == FIRST_WINDOW, "failures do not widen the window"
    await admission.aclose()


async def test_a_waiter_cancelled_as_its_place_came_hands_it_to_the_next(database: Database) -> None:
    admission = await recovered_admission(database)
    requests = Requests(admission)
    releases = [asyncio.Event() for _ in range(FIRST_WINDOW)]
    holders = [asyncio.create_task(requests.run(f"holder {n}", releases[n], fail=True)) for n in range(FIRST_WINDOW)]
    await requests.until_admitted(FIRST_WINDOW)
    cancelled = await waiting(requests, "cancelled")
    following = await waiting(requests, "following")
    hand_over = admission._hand_over

    def hand_over_then_cancel() -> None:
        hand_over()
        cancelled.cancel()  # before the waiter it handed a place to could wake and take it

    admission._hand_over = hand_over_then_cancel  # type: ignore[method-assign]
    releases[0].set()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    admission._hand_over = hand_over  # type: ignore[method-assign]
    async with asyncio.timeout(WAIT):
        await following
    assert requests.admitted[FIRST_WINDOW:] == ["following"]
    for release in releases:
        release.set()
    await asyncio.gather(*holders, return_exceptions=True)
    assert (admission.in_flight, admission._handed) == (0, 0)
    assert admission.window == FIRST_WINDOW + 1, "the one that succeeded widened it; the holders failed"
    await admission.aclose()


async def test_a_waiter_whose_wait_ended_as_a_hand_over_passed_it_by_ends_cleanly(database: Database) -> None:
    """The timeout cancels the waiter's place at once and wakes it later; a hand-over in between passes the
    cancelled place by (a run with two postmaster kills answered three uploads 500 here)."""
    admission = await recovered_admission(database)
    requests = Requests(admission)
    release = asyncio.Event()
    holders = [asyncio.create_task(requests.run(f"h{n}", release)) for n in range(FIRST_WINDOW)]
    await requests.until_admitted(FIRST_WINDOW)
    waiter = await waiting(requests, "waiter")
    waiter.cancel()  # its place is cancelled now; the task learns it when it next runs
    admission.window = FIRST_WINDOW + 1
    admission._hand_over()  # passes the cancelled place by
    assert not admission._waiting
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await asyncio.gather(*holders)
    assert (admission.in_flight, admission._handed) == (0, 0)
    await admission.aclose()
