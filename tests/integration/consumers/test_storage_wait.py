"""A sample check whose Storage stays unreachable, through the worker's real consumer (`build_consumers`) on a
real database: within VOICEGATE_STORAGE_WAIT_SECONDS it is handed back uncounted as before, and checked
once Storage answers; past it the message is reported once (an ERROR line, the metric `/metrics` serves, an
audit event) and then dead-lettered with `storage_unavailable`, which fails the sample with it (and a clone's
attempt likewise).

Storage answers the consumers' probe (so their dependency check passes) while the step's own download fails as
unreachable: what a partial outage does, or the API's outage as a `CONSUMER_MODE=http` worker meets it. A
consumer whose probe gets no answer reads nothing at all (tests/e2e/test_storage_outage.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from psycopg.rows import dict_row

from backend import queues
from backend.app import create_app
from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.errors import StorageUnavailable
from backend.queues import Message
from backend.settings import settings_from_env
from devkit.audio_corpus import speech_wav
from devkit.db import create_user, one, seed_consent
from queue_consumers.handlers import queue_routes
from queue_consumers.runtime import QueueConsumer
from queue_consumers.worker import build_consumers
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.integration.api.conftest import JWT_SECRET
from tests.integration.conftest import open_lifecycle
from tests.support import local_attempt

Db = psycopg.Connection[Any]
METRIC = "voicegate_queue_storage_wait_exceeded_total"


class DownloadsDown:
    """Storage whose downloads fail as unreachable while `down` (the probe and uploads answer), counting them."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.down = True
        self.downloads = 0

    async def download(self, bucket: str, path: str) -> bytes:
        self.downloads += 1
        if self.down:
            raise StorageUnavailable("storage is unreachable")
        data: bytes = await self.storage.download(bucket, path)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)


@pytest.fixture
async def ctx(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> AsyncIterator[WorkerContext]:
    async with open_lifecycle(cpu, db_dsn, tmp_path) as lifecycle:
        yield lifecycle


async def queued_sample_check(ctx: WorkerContext, db: Db) -> uuid.UUID:
    """A sample as its upload leaves it: the original stored, the row pending, its check queued."""
    owner = create_user(db)
    sample_id = uuid.uuid4()
    path = f"{owner}/samples/{sample_id}/original"
    data = speech_wav()
    await ctx.storage.upload("voice-samples", path, data, "audio/wav")
    db.execute(
        "insert into voice_samples (id, owner_id, consent_id, object_path, sniffed_type, size_bytes, provider,"
        " status) values (%s, %s, %s, %s, 'audio/wav', %s, 'local', 'pending')",
        (sample_id, owner, seed_consent(db, owner), path, len(data)),
    )
    db.execute("select pgmq.send(%s, %s::jsonb)", (queues.SAMPLE, json.dumps(queues.sample_check_message(sample_id))))
    return sample_id


def sample_checker(ctx: WorkerContext, storage: DownloadsDown, db_dsn: str, **env: str) -> QueueConsumer:
    """The worker's sample-check consumer, as `voicegate worker` builds it from `env`, over `storage`."""
    settings = settings_from_env({"VOICEGATE_QUEUE_POLL_INTERVAL": "0.1", **env})
    consumers = build_consumers(settings, dataclasses.replace(ctx, storage=storage), listen_dsn=db_dsn, worker_id="w")
    [checker] = [c for c in consumers if c.config.queue == queues.SAMPLE]
    return checker


async def until(condition: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def rows(db: Db, query: str, params: Any = None) -> list[dict[str, Any]]:
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()  # type: ignore[arg-type]  # test-only literal SQL


def audits(db: Db) -> list[dict[str, Any]]:
    return rows(db, "select * from voicegate.audit_events where action = 'queue.storage_wait_exceeded'")


def dead_letters(db: Db) -> list[dict[str, Any]]:
    return [r["message"] for r in rows(db, "select message from pgmq.q_voice_dead_letter order by msg_id")]


def reported() -> float:
    return REGISTRY.get_sample_value(METRIC, {"queue": queues.SAMPLE}) or 0.0


async def consuming(checker: QueueConsumer, until_true: Callable[[], bool]) -> None:
    stopping = asyncio.Event()
    task = asyncio.create_task(checker.run(stopping))
    try:
        await until(until_true)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)


async def test_a_sample_check_that_waits_out_storage_past_its_bound_is_reported_once_and_dead_lettered(
    ctx: WorkerContext, db: Db, db_dsn: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sample_id = await queued_sample_check(ctx, db)
    storage = DownloadsDown(ctx.storage)
    before = reported()
    checker = sample_checker(ctx, storage, db_dsn, VOICEGATE_STORAGE_WAIT_SECONDS="1", VOICEGATE_QUEUE_MAX_READS="2")
    with caplog.at_level(logging.ERROR, logger="queue_consumers.storage_wait"):
        await consuming(checker, lambda: len(dead_letters(db)) == 1)

    # Handed back uncounted until the wait passed its second, then reported, then two counted deliveries.
    assert storage.downloads >= 4
    [letter] = dead_letters(db)
    assert letter["sourceQueue"] == queues.SAMPLE
    assert letter["message"] == {"sampleId": str(sample_id)}
    assert letter["error"]["code"] == "storage_unavailable"
    sample = one(db, "select status, failure_reason from voice_samples where id = %s", (sample_id,))
    assert sample["status"] == "failed"
    assert sample["failure_reason"].startswith("storage_unavailable: Storage has been unreachable for this work")

    # Reported once: the audit event, the counter, one ERROR line naming the setting.
    [audit] = audits(db)
    assert (audit["actor"], audit["subject_type"]) == ("worker", "queue_message")
    assert audit["detail"]["queue"] == queues.SAMPLE
    assert audit["detail"]["message"] == {"sampleId": str(sample_id)}
    assert audit["detail"]["bound_seconds"] == 1
    assert audit["detail"]["waited_seconds"] >= 1
    assert reported() == before + 1
    [line] = [r for r in caplog.records if "waited out Storage" in r.getMessage()]
    assert line.levelno == logging.ERROR
    assert "VOICEGATE_STORAGE_WAIT_SECONDS" in line.getMessage()

    # What /metrics serves, in the process that runs the consumers (`voicegate up`).
    settings = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path)}), {"SUPABASE_JWT_SECRET": JWT_SECRET}
    )
    async with AsyncTestClient(app=create_app(settings, db_dsn, embedded=EMBEDDED)) as client:
        metrics = (await client.get("/metrics")).text
    [value] = re.findall(rf'^{METRIC}\{{queue="{queues.SAMPLE}"\}} (\S+)$', metrics, re.MULTILINE)
    assert float(value) == before + 1


async def test_within_its_bound_a_sample_check_waits_out_storage_uncounted_and_is_checked_once_it_answers(
    ctx: WorkerContext, db: Db, db_dsn: str
) -> None:
    sample_id = await queued_sample_check(ctx, db)
    storage = DownloadsDown(ctx.storage)
    before = reported()
    checker = sample_checker(ctx, storage, db_dsn, VOICEGATE_QUEUE_MAX_READS="2")  # the default bound: an hour
    stopping = asyncio.Event()
    task = asyncio.create_task(checker.run(stopping))
    try:
        await until(lambda: storage.downloads >= 4)  # twice max_reads: counted, it would be a dead letter by now
        [waiting] = rows(db, f"select read_ct, message from pgmq.q_{queues.SAMPLE}")
        assert waiting["read_ct"] <= 1
        assert set(waiting["message"]) == {"sampleId", "storageWait"}
        storage.down = False
        await until(
            lambda: one(db, "select status from voice_samples where id = %s", (sample_id,))["status"] == "ready"
        )
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)
    assert dead_letters(db) == []
    assert audits(db) == []
    assert reported() == before
    assert rows(db, "select * from voicegate.queue_message_errors") == []


async def test_a_clone_dead_lettered_for_storage_fails_its_attempt_with_storage_unavailable(
    ctx: WorkerContext, db: Db
) -> None:
    attempt = local_attempt(db)["attempt_id"]
    [route] = [r for r in queue_routes(ctx, "w") if r.queue == queues.CLONE]
    assert route.on_dead_letter is not None
    message = Message(
        msg_id=1,
        read_ct=5,
        enqueued_at=datetime.now(UTC),
        vt=datetime.now(UTC),
        message={"attemptId": str(attempt)},
        read_at=time.monotonic(),
    )
    async with ctx.db.service_transaction() as conn:
        await route.on_dead_letter(conn, message, "storage_unavailable", "Storage has been unreachable since then")
    failed = one(
        db, "select status, last_error_code, last_error_message from voice_clone_attempts where id = %s", (attempt,)
    )
    assert failed == {
        "status": "failed",
        "last_error_code": "storage_unavailable",
        "last_error_message": "Storage has been unreachable since then",
    }
