"""The synthesis queue is read in turn by the jobs' owners (`backend.queues.Turns`): another user's job is taken
as soon as it is queued, whatever one user has queued before it, and one user's jobs hold at most their share of a
consumer's slots; the CPU work of a job whose owner has others in hand yields to other users' (`backend.cpu`).

Before, the queue was read in the order it was written: with one user's twelve jobs queued on a consumer of four
slots, another user's job waited until the last of the twelve had started."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from backend import queues
from backend.context import WorkerContext
from backend.cpu import BACKGROUND_NICE, CpuExecutor
from backend.provenance import SynthesisClaim
from devkit.db import Conn, create_user, one
from fakes import ElevenLabsFake, serve
from queue_consumers.handlers import queue_routes
from queue_consumers.runtime import ConsumerConfig, QueueConsumer
from tests.e2e.conftest import elevenlabs_env
from tests.e2e.test_samples_and_synthesis import cloned_voice
from tests.integration.conftest import open_lifecycle
from tests.integration.test_usage_ledger import queued_job

SLOTS = 4
BACKLOG = 12
#: How long the provider takes to speak a piece: the backlog takes several rounds of the slots.
LATENCY_S = 0.25


def queue(db: Conn, owner: uuid.UUID, voice: str, text: str) -> uuid.UUID:
    """A queued job and its message, as `POST /api/v1/clone` writes them."""
    job: uuid.UUID = queued_job(db, owner, voice, text)
    db.execute("select pgmq.send('voice_synthesis', jsonb_build_object('jobId', %s::text))", (str(job),))
    return job


def statuses(db: Conn, owner: uuid.UUID) -> dict[str, int]:
    rows = db.execute(
        "select status, count(*) from synthesis_jobs where owner_id = %s group by status", (owner,)
    ).fetchall()
    return {str(status): int(n) for status, n in rows}


def synthesis_consumer(ctx: WorkerContext, db_dsn: str) -> QueueConsumer:
    """The synthesis queue's consumer as a worker runs it, with `SLOTS` slots."""
    route = next(r for r in queue_routes(ctx, "w", slots=SLOTS) if r.queue == queues.SYNTHESIS)
    config = ConsumerConfig(queue=queues.SYNTHESIS, concurrency=SLOTS, batch_size=SLOTS, gather_seconds=0.0)
    return QueueConsumer(ctx.db, config, route.handler, reader=route.reader, listen_dsn=db_dsn)


async def until(condition: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        await asyncio.sleep(0.01)


def nice_here() -> int:
    """The nice value of the calling thread (Linux keeps one per thread)."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


async def test_another_users_job_does_not_wait_behind_one_users_backlog(
    cpu: CpuExecutor, db: Conn, db_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = ElevenLabsFake(max_voices=10)
    provider.faults.latency_s = LATENCY_S
    busy, other = create_user(db), create_user(db)
    with serve(provider) as url:
        busy_voice, other_voice = cloned_voice(db, provider, busy), cloned_voice(db, provider, other)
        for n in range(BACKLOG):
            queue(db, busy, busy_voice, f"Backlog job number {n}.")
        async with open_lifecycle(cpu, db_dsn, tmp_path, **elevenlabs_env(provider, url)) as ctx:
            # The nice value of the thread that signed each job's audio, by the job's voice.
            signed_at: dict[uuid.UUID, list[int]] = defaultdict(list)
            sign = ctx.signer.sign_audio

            def noting_sign(data: bytes, mime: str, claim: SynthesisClaim) -> bytes:
                signed_at[claim.voice_id].append(nice_here())
                return sign(data, mime, claim)

            monkeypatch.setattr(ctx.signer, "sign_audio", noting_sign)
            consumer = synthesis_consumer(ctx, db_dsn)
            stopping = asyncio.Event()
            task = asyncio.create_task(consumer.run(stopping))
            try:
                await asyncio.wait_for(consumer.listening.wait(), 5)
                await until(lambda: statuses(db, busy).get("processing", 0) > 0, 10, "the backlog started")
                most = statuses(db, busy).get("processing", 0)
                job = queue(db, other, other_voice, "Another user's job.")
                await until(
                    lambda: one(db, "select status from synthesis_jobs where id = %s", (job,))["status"] == "succeeded",
                    10,
                    "the other user's job succeeded",
                )
                left = statuses(db, busy).get("queued", 0)
                most = max(most, statuses(db, busy).get("processing", 0))
            finally:
                stopping.set()
                await asyncio.wait_for(task, 30)

    # In turn: the other user's job was taken while most of the backlog was still queued (in the order written, it
    # would have started after the last of the twelve had).
    assert left >= SLOTS, left
    # The backlog held at most its share of the four slots: one stayed free for another user.
    assert most <= queues.Turns(SLOTS).share == SLOTS - 1
    # The other user's one job in hand signed at the process's own priority; the backlog's jobs, each begun beside
    # others of theirs (all but a first, or one begun as the rest had ended), on the niced threads.
    ours = nice_here()
    assert signed_at[uuid.UUID(other_voice)] == [ours]
    niced = signed_at[uuid.UUID(busy_voice)].count(min(19, ours + BACKGROUND_NICE))
    assert niced >= len(signed_at[uuid.UUID(busy_voice)]) - 2 > 0, signed_at
