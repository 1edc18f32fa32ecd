"""The `voice_sample_process` step on a real database and the real Storage stand-in: a pending sample is
checked into `ready` (report, cleaned copy beside the original, its digest recorded) or `failed` (reason,
report); a repeat changes nothing; a sample deleted mid-check gets no copy; a dead letter fails an
unchecked one."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backend.context import WorkerContext
from backend.cpu import CpuExecutor, long_calls
from backend.samples import check
from backend.samples.step import fail_sample, process_sample
from devkit.audio_corpus import noise, speech_wav, wav_bytes
from devkit.db import create_user, one, seed_consent
from tests.integration.conftest import open_lifecycle
from tests.unit.test_cpu import nice_here, tier_here

BUCKET = "voice-samples"
BOUND_S = 60.0


class DeletingStorage:
    """The real Storage client, except that reading a sample's original for its check deletes the sample's
    row, as its owner's DELETE racing the check would."""

    def __init__(self, storage: Any, dsn: str) -> None:
        self._storage = storage
        self._dsn = dsn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    async def download(self, bucket: str, path: str) -> bytes:
        data: bytes = await self._storage.download(bucket, path)
        if path.endswith("/original"):
            async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
                await conn.execute("delete from voice_samples where object_path = %s", (path,))
        return data


@pytest.fixture
async def ctx(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> AsyncIterator[WorkerContext]:
    async with open_lifecycle(cpu, db_dsn, tmp_path) as lifecycle:
        yield lifecycle


async def pending_sample(ctx: WorkerContext, db: psycopg.Connection[Any], data: bytes) -> dict[str, Any]:
    """A sample as `POST /api/v1/voice-samples` leaves it: the original stored, the row `pending`."""
    owner = create_user(db)
    sample_id = uuid.uuid4()
    path = f"{owner}/samples/{sample_id}/original"
    await ctx.storage.upload(BUCKET, path, data, "audio/wav")
    return one(
        db,
        "insert into voice_samples (id, owner_id, consent_id, object_path, sniffed_type, size_bytes, provider,"
        " status) values (%s, %s, %s, %s, 'audio/wav', %s, 'local', 'pending') returning *",
        (sample_id, owner, seed_consent(db, owner), path, len(data)),
    )


def stored(db: psycopg.Connection[Any], sample: dict[str, Any]) -> set[str]:
    folder = sample["object_path"].rsplit("/", 1)[0]
    rows = db.execute("select name from storage.objects where name like %s", (folder + "/%",))
    return {row[0].rsplit("/", 1)[1] for row in rows}


async def test_a_pending_sample_is_checked_into_ready_once(ctx: WorkerContext, db: psycopg.Connection[Any]) -> None:
    sample = await pending_sample(ctx, db, speech_wav())

    assert (await process_sample(ctx, sample["id"])).status == "ready"

    checked = one(db, "select * from voice_samples where id = %s", (sample["id"],))
    assert (checked["status"], checked["failure_reason"]) == ("ready", None)
    assert checked["processed_object_path"] == sample["object_path"].replace("original", "processed.wav")
    assert (checked["sample_rate"], checked["channels"]) == (24000, 1)
    assert checked["quality_report"]["verdict"] in {"good", "usable"}
    assert stored(db, sample) == {"original", "processed.wav"}
    cleaned = await ctx.storage.download(BUCKET, checked["processed_object_path"])
    assert cleaned[:4] == b"RIFF"
    recorded = one(
        db, "select * from voicegate.service_written_objects where name = %s", (checked["processed_object_path"],)
    )
    assert (recorded["bucket_id"], recorded["sha256"], recorded["size_bytes"]) == (
        BUCKET,
        hashlib.sha256(cleaned).hexdigest(),
        len(cleaned),
    )

    again = await process_sample(ctx, sample["id"])

    assert again.status == "ready"
    assert (
        one(db, "select updated_at from voice_samples where id = %s", (sample["id"],))["updated_at"]
        == checked["updated_at"]
    )


async def test_a_sample_is_checked_as_a_queued_long_call_and_no_short_call_nor_reading_waits_for_it(
    ctx: WorkerContext, db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sample's check (decoding, cleaning, the voiceprint: about 7 CPU-s for 60 s of speech) is one long call a
    queue's consumer makes (`backend.cpu.long_calls(queued=True)`): while it holds the only thread of its tier,
    another user's short work (a render's phrase, a mark) and their long call a request waits on (a consent
    reading) still run at once. Watched (held at its start, the tier of its thread noted), never replaced."""
    loop = asyncio.get_running_loop()
    holding, gate = asyncio.Event(), threading.Event()
    tiers: list[tuple[str, int]] = []
    real = check._prepare_and_print

    def held(data: bytes, rules: Any) -> Any:
        tiers.append(tier_here())
        loop.call_soon_threadsafe(holding.set)
        assert gate.wait(BOUND_S), "the test never let the check go on"
        return real(data, rules)

    monkeypatch.setattr(check, "_prepare_and_print", held)
    sample = await pending_sample(ctx, db, speech_wav())
    other = create_user(db)
    async with CpuExecutor(1) as cpu:  # a thread a tier: what waits in a tier is queued behind its only thread
        checking = asyncio.create_task(process_sample(dataclasses.replace(ctx, cpu=cpu), sample["id"]))
        await asyncio.wait_for(holding.wait(), BOUND_S)
        assert await asyncio.wait_for(cpu.run(other, tier_here), BOUND_S) == ("first", nice_here())
        with long_calls():
            assert await asyncio.wait_for(cpu.run(other, tier_here), BOUND_S) == ("long", nice_here())
        gate.set()
        assert (await asyncio.wait_for(checking, BOUND_S)).status == "ready"

    assert tiers == [("queued", nice_here())]


async def test_a_refused_sample_keeps_the_reason_and_its_report(
    ctx: WorkerContext, db: psycopg.Connection[Any]
) -> None:
    sample = await pending_sample(ctx, db, wav_bytes(noise(5.0, rms=0.05)))

    assert (await process_sample(ctx, sample["id"])).status == "failed"

    checked = one(db, "select * from voice_samples where id = %s", (sample["id"],))
    assert (checked["status"], checked["failure_reason"]) == ("failed", "no speech detected")
    assert checked["quality_report"]["verdict"] == "poor"
    assert checked["processed_object_path"] is None
    assert stored(db, sample) == {"original"}


async def test_a_sample_deleted_during_its_check_leaves_no_copy(
    ctx: WorkerContext, db: psycopg.Connection[Any], db_dsn: str
) -> None:
    sample = await pending_sample(ctx, db, speech_wav())
    racing = dataclasses.replace(ctx, storage=DeletingStorage(ctx.storage, db_dsn), public_storage=False)

    assert (await process_sample(racing, sample["id"])).status == "missing"

    assert db.execute("select count(*) from voice_samples").fetchone() == (0,)
    # The original is the deleting request's to remove; the check writes no copy (nor its record) for a
    # row that is gone.
    assert stored(db, sample) == {"original"}
    assert db.execute("select count(*) from voicegate.service_written_objects").fetchone() == (0,)


async def test_a_dead_letter_fails_only_an_unchecked_sample(ctx: WorkerContext, db: psycopg.Connection[Any]) -> None:
    unchecked = await pending_sample(ctx, db, speech_wav())
    checked = await pending_sample(ctx, db, speech_wav(seed=1))
    await process_sample(ctx, checked["id"])

    async with ctx.db.service_transaction() as conn:
        for sample in (unchecked, checked):
            await fail_sample(conn, sample["id"], "dead-lettered after 5 deliveries")

    statuses = dict(db.execute("select id, status from voice_samples").fetchall())
    assert statuses == {unchecked["id"]: "failed", checked["id"]: "ready"}
    assert one(db, "select failure_reason from voice_samples where id = %s", (unchecked["id"],))["failure_reason"] == (
        "dead-lettered after 5 deliveries"
    )
