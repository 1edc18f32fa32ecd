"""A user's synthesis jobs on their way to the database in one API process (`backend.usage.job_admission`): a
refusal from the database is answered again from memory for `REMEMBER_S`, never past the window's end, with its own
words and fields and after a pause; a job accepted forgets it, or remembers the next refused when it filled the
bound; a text that fits what was left is left to the database; and a user's jobs go one at a time, a job that waits
too long for its turn answered 429."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from backend.errors import JobsLimited, QuotaExceeded, TooManyRequests
from backend.usage.job_admission import REMEMBER_S, JobAdmission
from backend.usage.ledger import Admitted, Allowance


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def allowance(used: int, *, reset_in: int = 3600) -> Allowance:
    start = datetime(2026, 11, 28, tzinfo=UTC)
    return Allowance(limit=1000, window_seconds=86400, used=used, window_start=start, reset_in=reset_in)


def admission(clock: Clock) -> JobAdmission:
    return JobAdmission(clock=clock, pause=0.0, line_wait=0.2)


async def test_a_jobs_refusal_is_answered_from_memory_for_a_moment_with_its_words_and_fields() -> None:
    clock = Clock()
    jobs = admission(clock)
    refusal = JobsLimited("You have 20 synthesis jobs queued or running.", headers=allowance(10).headers())
    jobs.refused("u", refusal, allowance(10))

    with pytest.raises(JobsLimited) as again:
        await jobs.check("u", None)
    assert again.value.detail == refusal.detail
    assert again.value.retry_after == 5
    assert again.value.headers["RateLimit"] == '"characters";r=990;t=3600'
    await jobs.check("someone else", 10)  # nobody else's

    clock.now += REMEMBER_S
    await jobs.check("u", 10)  # forgotten: the database decides again


async def test_a_job_accepted_forgets_the_refusal_unless_it_filled_the_bound() -> None:
    jobs = admission(Clock())
    jobs.refused("u", JobsLimited(), allowance(10))
    jobs.accepted("u", Admitted(allowance=allowance(10), next_refused=None))
    assert jobs.remembered("u", 10) is None

    full = JobsLimited("You have 20 synthesis jobs queued or running.")
    jobs.accepted("u", Admitted(allowance=allowance(10), next_refused=full))
    refusal = jobs.remembered("u", 10)
    assert isinstance(refusal, JobsLimited)
    assert refusal.detail == full.detail


async def test_a_quota_refusal_refuses_only_texts_past_what_was_left_and_never_past_the_windows_end() -> None:
    clock = Clock()
    jobs = admission(clock)
    jobs.refused("u", QuotaExceeded(), allowance(970, reset_in=1))

    with pytest.raises(QuotaExceeded) as refused:
        await jobs.check("u", 31)
    assert refused.value.retry_after == 1
    await jobs.check("u", 30)  # fits what was left: the database decides
    await jobs.check("u", None)  # a text not read yet may fit

    clock.now += 1  # the window reset within the memory's moment
    assert jobs.remembered("u", 31) is None


async def test_a_quota_used_up_refuses_any_text_before_it_is_read() -> None:
    clock = Clock()
    jobs = admission(clock)
    jobs.refused("u", QuotaExceeded(), allowance(1000, reset_in=600))
    clock.now += 0.5

    refusal = jobs.remembered("u", None)

    assert isinstance(refusal, QuotaExceeded)
    assert refusal.retry_after == 600  # the window's end, as remembered
    assert refusal.headers["RateLimit"] == '"characters";r=0;t=600'


async def test_a_refusal_from_memory_is_answered_after_its_pause() -> None:
    jobs = JobAdmission(pause=0.05)
    jobs.refused("u", JobsLimited(), allowance(10))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(JobsLimited):
        await jobs.check("u", None)
    assert loop.time() - started >= 0.05


async def test_a_users_jobs_go_one_at_a_time_and_one_kept_waiting_too_long_is_refused() -> None:
    jobs = admission(Clock())
    inside: list[str] = []
    release = asyncio.Event()

    async def job(name: str) -> None:
        async with jobs.one_at_a_time("u"):
            inside.append(name)
            await release.wait()
            inside.remove(name)

    first = asyncio.create_task(job("first"))
    await asyncio.sleep(0)
    async with jobs.one_at_a_time("other"):  # another user's turn is their own
        assert inside == ["first"]
    with pytest.raises(TooManyRequests):
        await job("second")  # its turn does not come within the line's wait
    release.set()
    await first
    await asyncio.wait_for(job("third"), 1)
