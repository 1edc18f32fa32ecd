"""The synthesis handler's part in sharing the cores: a job begun while its owner has another in this worker's hands
does its CPU work yielding (`backend.cpu`), on the executor's niced threads; one begun alone, or another user's, at the
process's priority. The job's run itself is stood in for: it makes one CPU call and waits for the test."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from backend import queues
from backend.context import Outcome
from backend.cpu import BACKGROUND_NICE, CpuExecutor
from backend.synthesis import step

BOUND_S = 20.0


def nice_here() -> int:
    """The nice value of the calling thread (Linux keeps one per thread)."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@dataclass
class Context:
    """What the handler hands on to the run: here only the executor the stand-in's call runs on."""

    cpu: CpuExecutor


def message(owner: str) -> queues.Message:
    now = datetime.now(UTC)
    job = {"jobId": str(uuid.uuid4())}
    return queues.Message(msg_id=1, read_ct=1, enqueued_at=now, vt=now, message=job, read_at=0.0, owner=owner)


async def test_a_job_begun_beside_another_of_its_owners_yields_and_one_begun_alone_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    niced: dict[uuid.UUID, int] = {}
    called = asyncio.Event()
    ended: dict[uuid.UUID, asyncio.Event] = {}

    async def run(ctx: Any, job_id: uuid.UUID, worker_id: str) -> Outcome:
        niced[job_id] = await ctx.cpu.run(None, nice_here)
        called.set()
        await asyncio.wait_for(ended.setdefault(job_id, asyncio.Event()).wait(), BOUND_S)
        return Outcome(status="succeeded")

    monkeypatch.setattr(step, "process_synthesis", run)
    ours = nice_here()
    async with CpuExecutor(1) as cpu:
        turns = queues.Turns(8)
        handle = step.synthesis_handler(Context(cpu), "w", turns)  # type: ignore[arg-type]

        async def begin(owner: str) -> tuple[uuid.UUID, asyncio.Future[Any]]:
            """Deliver a job of `owner`'s and return once its run has made its CPU call (it then waits)."""
            delivered = message(owner)
            called.clear()
            task = asyncio.ensure_future(handle(delivered))
            await asyncio.wait_for(called.wait(), BOUND_S)
            return delivered.id_of("jobId"), task

        first, first_run = await begin("a")  # alone
        second, second_run = await begin("a")  # beside the first
        other, other_run = await begin("b")  # another user's, alone
        assert (niced[first], niced[second], niced[other]) == (ours, min(19, ours + BACKGROUND_NICE), ours)
        for job in (first, second, other):
            ended.setdefault(job, asyncio.Event()).set()
        await asyncio.wait_for(asyncio.gather(first_run, second_run, other_run), BOUND_S)
        # Its other job ended: the owner's next is alone again.
        last, last_run = await begin("a")
        assert niced[last] == ours
        ended.setdefault(last, asyncio.Event()).set()
        await asyncio.wait_for(last_run, BOUND_S)
