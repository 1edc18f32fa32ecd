"""The voice manifest on a real database and the Storage stand-in: written for the provider voice the row
carries, rewritten when the voice moves to another provider, never by a writer that lost the race to a
newer provider voice, and never for a deleted voice; removed with the voice. The clone step writes it once
the attempt is ready; a failed upload leaves the attempt ready and the manifest to the message's next
delivery. No lock is held while Storage is called (issue 45): a transition on the voice (an attempt
completing, its deletion) does not wait for an upload under way, and the races that lock used to order end
with the file and its digest as the voice now is, or with no manifest for a deleted voice, whatever the
order the uploads land in; what a writer that died leaves is settled by the sweep."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backend import queues
from backend.auth.verify import UserClaims
from backend.clone import manifest
from backend.clone.manifest import BUCKET, RecordCursor, settle_manifests, write_manifest
from backend.clone.step import process_attempt
from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.db.pool import create_pool
from backend.db.units import Database
from backend.errors import NotFound, StorageUnavailable, StoredObjectAltered
from backend.records import attempts
from backend.settings import settings_from_env
from backend.storage import integrity, paths
from backend.storage.client import ObjectStorage
from backend.voices.service import VoicesService
from devkit.db import create_user, one, seed_consent
from standins.storage.in_process import standalone_storage
from tests.integration.conftest import open_lifecycle
from tests.support import local_attempt

Db = psycopg.Connection[Any]


@pytest.fixture
async def database(db_dsn: str) -> AsyncIterator[Database]:
    pool = create_pool(db_dsn, settings_from_env({}).pool_limits)
    await pool.open(wait=True)
    yield Database(pool)
    await pool.close()


@pytest.fixture
async def storage(db_dsn: str, tmp_path: Path) -> AsyncIterator[ObjectStorage]:
    async with standalone_storage(db_dsn, tmp_path / "storage") as client:
        yield client


def voice(db: Db, provider: str, provider_voice_id: str) -> dict[str, Any]:
    owner = create_user(db)
    return one(
        db,
        "insert into voices (owner_id, name, status, tts_provider, provider_voice_id, provider_target_model,"
        " consent_id) values (%s, 'v', 'ready', %s, %s, 'model-1', %s) returning *",
        (owner, provider, provider_voice_id, seed_consent(db, owner, "2026-11")),
    )


def claims_of(user: uuid.UUID) -> UserClaims:
    raw = {"sub": str(user), "role": "authenticated", "aud": "authenticated"}
    return UserClaims(sub=str(user), email=None, role="authenticated", aal=None, session_id=None, raw=raw)


def voices(database: Database, storage: ObjectStorage) -> VoicesService:
    """The voices' use cases over `database` and `storage`, as the API builds them (soft delete reads no setting)."""
    return VoicesService(database, storage, settings_from_env({}))


async def read(storage: ObjectStorage, row: dict[str, Any]) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(await storage.download(BUCKET, paths.manifest(row["owner_id"], row["id"])))
    return manifest


def recorded_sha256(db: Db, row: dict[str, Any]) -> str | None:
    """The SHA-256 recorded for the voice's manifest when it was written, if any."""
    found = db.execute(
        "select sha256 from voicegate.service_written_objects where bucket_id = %s and name = %s",
        (BUCKET, paths.manifest(row["owner_id"], row["id"])),
    ).fetchone()
    return None if found is None else str(found[0])


async def test_the_manifest_is_rewritten_when_the_voice_changes_provider(
    db: Db, database: Database, storage: ObjectStorage
) -> None:
    row = voice(db, "local", "local-1")
    assert await write_manifest(
        database,
        storage,
        voice_id=row["id"],
        provider="local",
        provider_voice_id="local-1",
    )
    first = await read(storage, row)
    assert (first["provider"], first["providerVoiceId"], first["consentVersion"]) == ("local", "local-1", "2026-11")
    assert (first["sampleId"], first["sampleVerdict"]) == (None, None)

    db.execute(
        "update voices set tts_provider = 'elevenlabs', provider_voice_id = 'el-1', provider_target_model = null"
        " where id = %s",
        (row["id"],),
    )
    assert await write_manifest(
        database,
        storage,
        voice_id=row["id"],
        provider="elevenlabs",
        provider_voice_id="el-1",
    )
    moved = await read(storage, row)
    assert (moved["provider"], moved["providerVoiceId"], moved["targetModel"]) == ("elevenlabs", "el-1", None)
    stored = await storage.download(BUCKET, paths.manifest(row["owner_id"], row["id"]))
    assert recorded_sha256(db, row) == hashlib.sha256(stored).hexdigest()

    # A late writer for the provider voice the row no longer carries changes nothing.
    assert not await write_manifest(
        database,
        storage,
        voice_id=row["id"],
        provider="local",
        provider_voice_id="local-1",
    )
    assert await read(storage, row) == moved


async def test_a_deleted_voice_keeps_no_manifest(db: Db, database: Database, storage: ObjectStorage) -> None:
    row = voice(db, "local", "local-2")
    await write_manifest(
        database,
        storage,
        voice_id=row["id"],
        provider="local",
        provider_voice_id="local-2",
    )
    claims = claims_of(row["owner_id"])
    assert recorded_sha256(db, row) is not None

    await voices(database, storage).soft_delete_voice(claims, row["id"])

    with pytest.raises(NotFound):
        await read(storage, row)
    assert recorded_sha256(db, row) is None
    assert not await write_manifest(
        database,
        storage,
        voice_id=row["id"],
        provider="local",
        provider_voice_id="local-2",
    )
    with pytest.raises(NotFound):
        await read(storage, row)
    stranger = claims_of(create_user(db))  # a live account: one that is gone is refused before (AccountGone)
    with pytest.raises(NotFound):
        await voices(database, storage).soft_delete_voice(stranger, row["id"])


def writes_under_way(db: Db) -> int:
    """Manifest writes announced and not ended."""
    return int(db.execute("select count(*) from voicegate.service_object_writes").fetchone()[0])  # type: ignore[index]


def settled(db: Db, storage_bytes: bytes, row: dict[str, Any]) -> dict[str, Any]:
    """The manifest as stored, once its digest is recorded as its bytes' and no write is left under way."""
    assert recorded_sha256(db, row) == hashlib.sha256(storage_bytes).hexdigest()
    assert writes_under_way(db) == 0
    manifest: dict[str, Any] = json.loads(storage_bytes)
    return manifest


class HeldUpload:
    """Storage whose first `held` uploads wait until released (later ones go straight through): a slow
    Storage. `land_first`: a held upload stores its bytes first and then waits, as one whose answer is slow
    to come back; else it waits and then stores them. `fail_after`: once released, the held upload raises
    StorageUnavailable after storing (its writer never learns that the bytes landed)."""

    def __init__(
        self, storage: ObjectStorage, *, held: int = 1, land_first: bool = False, fail_after: bool = False
    ) -> None:
        self.storage = storage
        self.held = held
        self.land_first = land_first
        self.fail_after = fail_after
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def upload(self, bucket: str, path: str, data: bytes, content_type: str, *, upsert: bool = False) -> None:
        if self.held <= 0:
            await self.storage.upload(bucket, path, data, content_type, upsert=upsert)
            return
        self.held -= 1
        if self.land_first:
            await self.storage.upload(bucket, path, data, content_type, upsert=upsert)
        self.entered.set()
        await self.release.wait()
        if not self.land_first:
            await self.storage.upload(bucket, path, data, content_type, upsert=upsert)
        if self.fail_after:
            raise StorageUnavailable("storage did not answer")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)


def locks_within(db_dsn: str, sql: str, voice_id: uuid.UUID) -> bool:
    """Whether another session gets `sql`'s lock on the voice row within 0.5 s."""
    with psycopg.connect(db_dsn) as other:
        other.execute("set lock_timeout = '500ms'")
        try:
            other.execute(sql, (voice_id,))
        except psycopg.errors.LockNotAvailable:
            return False
        finally:
            other.rollback()
        return True


def moves_within(db_dsn: str, voice_id: uuid.UUID, provider_voice_id: str | None = "el-1") -> bool:
    """Whether another session moves the voice to ElevenLabs' `provider_voice_id` (None: one still to be made)
    within TRANSITION_SECONDS."""
    with psycopg.connect(db_dsn, autocommit=True) as other:
        other.execute("select set_config('lock_timeout', %s, false)", (f"{TRANSITION_SECONDS}s",))
        try:
            other.execute(
                "update voices set tts_provider = 'elevenlabs', provider_voice_id = %s where id = %s",
                (provider_voice_id, voice_id),
            )
        except psycopg.errors.LockNotAvailable:
            return False
        return True


#: How long a transition on the voice may take while a manifest upload is held: a statement's time, not Storage's.
TRANSITION_SECONDS = 5.0


async def test_a_manifest_upload_in_progress_holds_no_lock_on_the_voice(
    db: Db, database: Database, storage: ObjectStorage, db_dsn: str
) -> None:
    row = voice(db, "local", "local-1")
    held = HeldUpload(storage)
    writing = asyncio.create_task(
        write_manifest(database, held, voice_id=row["id"], provider="local", provider_voice_id="local-1")
    )
    try:
        await asyncio.wait_for(held.entered.wait(), 30)
        # A synthesis job's foreign-key check (`key share`), a transition's update, the deletion: none waits.
        for sql in (
            "select 1 from voices where id = %s for key share",
            "select 1 from voices where id = %s for no key update",
            "delete from voices where id = %s",
        ):
            assert await asyncio.to_thread(locks_within, db_dsn, sql, row["id"]), sql
        assert not writing.done()
    finally:
        held.release.set()
        assert await asyncio.wait_for(writing, 30)
    stored = await storage.download(BUCKET, paths.manifest(row["owner_id"], row["id"]))
    assert settled(db, stored, row)["providerVoiceId"] == "local-1"


async def test_a_newer_writer_is_not_held_back_and_a_stale_upload_landing_over_it_is_written_over(
    db: Db, database: Database, storage: ObjectStorage, db_dsn: str
) -> None:
    row = voice(db, "local", "local-1")
    stale = HeldUpload(storage)
    older = asyncio.create_task(
        write_manifest(database, stale, voice_id=row["id"], provider="local", provider_voice_id="local-1")
    )
    try:
        await asyncio.wait_for(stale.entered.wait(), 30)
        assert await asyncio.to_thread(moves_within, db_dsn, row["id"])
        newer = write_manifest(database, storage, voice_id=row["id"], provider="elevenlabs", provider_voice_id="el-1")
        assert await asyncio.wait_for(newer, TRANSITION_SECONDS)
        assert (await read(storage, row))["providerVoiceId"] == "el-1"
    finally:
        # The older upload lands now, over the newer manifest; its writer finds the voice changed and writes
        # the voice as it now is.
        stale.release.set()
        assert await asyncio.wait_for(older, 30)
    stored = await storage.download(BUCKET, paths.manifest(row["owner_id"], row["id"]))
    manifest = settled(db, stored, row)
    assert (manifest["provider"], manifest["providerVoiceId"]) == ("elevenlabs", "el-1")
    current = one(db, "select updated_at from voices where id = %s", (row["id"],))
    assert datetime.fromisoformat(manifest["updatedAt"]) == current["updated_at"]


@pytest.mark.parametrize("land_first", [False, True], ids=["lands-after-the-deletion", "lands-before-it"])
async def test_a_deletion_is_not_held_back_and_leaves_no_manifest_whenever_the_upload_lands(
    db: Db, database: Database, storage: ObjectStorage, land_first: bool
) -> None:
    row = voice(db, "local", "local-1")
    held = HeldUpload(storage, land_first=land_first)
    writing = asyncio.create_task(
        write_manifest(database, held, voice_id=row["id"], provider="local", provider_voice_id="local-1")
    )
    try:
        await asyncio.wait_for(held.entered.wait(), 30)
        await asyncio.wait_for(
            voices(database, storage).soft_delete_voice(claims_of(row["owner_id"]), row["id"]), TRANSITION_SECONDS
        )
        assert not writing.done()
    finally:
        held.release.set()
        # The writer finds the voice deleted after its upload and removes what it wrote.
        assert not await asyncio.wait_for(writing, 30)
    with pytest.raises(NotFound):
        await read(storage, row)
    assert recorded_sha256(db, row) is None
    assert writes_under_way(db) == 0


async def test_a_writer_whose_voice_moved_on_to_a_provider_voice_still_to_be_made_leaves_no_manifest(
    db: Db, database: Database, storage: ObjectStorage, db_dsn: str
) -> None:
    row = voice(db, "local", "local-1")
    held = HeldUpload(storage)
    writing = asyncio.create_task(
        write_manifest(database, held, voice_id=row["id"], provider="local", provider_voice_id="local-1")
    )
    try:
        await asyncio.wait_for(held.entered.wait(), 30)
        # A new attempt with another provider: the voice has no provider voice until it is made.
        assert await asyncio.to_thread(moves_within, db_dsn, row["id"], None)
    finally:
        held.release.set()
        assert not await asyncio.wait_for(writing, 30)
    with pytest.raises(NotFound):
        await read(storage, row)
    assert recorded_sha256(db, row) is None
    assert writes_under_way(db) == 0


async def test_a_writer_that_died_after_its_upload_landed_is_read_as_voicegates_and_settled_by_the_sweep(
    db: Db, database: Database, storage: ObjectStorage, db_dsn: str
) -> None:
    row = voice(db, "local", "local-1")
    path = paths.manifest(row["owner_id"], row["id"])
    dying = HeldUpload(storage, fail_after=True)
    older = asyncio.create_task(
        write_manifest(database, dying, voice_id=row["id"], provider="local", provider_voice_id="local-1")
    )
    try:
        await asyncio.wait_for(dying.entered.wait(), 30)
        assert await asyncio.to_thread(moves_within, db_dsn, row["id"])
        newer = write_manifest(database, storage, voice_id=row["id"], provider="elevenlabs", provider_voice_id="el-1")
        assert await asyncio.wait_for(newer, TRANSITION_SECONDS)
    finally:
        dying.release.set()
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(older, 30)
    # The older manifest is over the newer one, and its writer is gone: the record names the newer bytes.
    assert (await read(storage, row))["providerVoiceId"] == "local-1"
    assert writes_under_way(db) == 1
    # Written by voicegate, so a reader that checks it takes it (no audit event says it was altered) ...
    subject = ("voice", row["id"])
    data = await integrity.read(database, storage, BUCKET, path, actor="test", subject=subject)
    assert json.loads(data)["providerVoiceId"] == "local-1"
    assert db.execute("select count(*) from voicegate.audit_events").fetchone() == (0,)

    # ... and the sweep, once no upload of it can still be under way, writes the voice as it now is.
    assert await settle_manifests(database, storage, lifetime=3600, limit=10) == 0, "too recent to settle"
    assert await settle_manifests(database, storage, lifetime=0, limit=10) == 1
    stored = await storage.download(BUCKET, path)
    assert settled(db, stored, row)["providerVoiceId"] == "el-1"
    assert await settle_manifests(database, storage, lifetime=0, limit=10) == 0

    # Bytes nobody announced are still refused.
    await storage.upload(BUCKET, path, b'{"forged": true}', "application/json", upsert=True)
    with pytest.raises(StoredObjectAltered):
        await integrity.read(database, storage, BUCKET, path, actor="test", subject=subject)


class RemovalsDown:
    """Storage that cannot remove anything; everything else is the stand-in's."""

    def __init__(self, storage: ObjectStorage) -> None:
        self.storage = storage

    async def remove(self, bucket: str, paths: list[str]) -> list[str]:
        raise StorageUnavailable("storage is unreachable")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)


async def test_a_deletion_storage_cannot_finish_deletes_the_voice_and_the_sweep_removes_its_manifest(
    db: Db, database: Database, storage: ObjectStorage
) -> None:
    row = voice(db, "local", "local-1")
    assert await write_manifest(database, storage, voice_id=row["id"], provider="local", provider_voice_id="local-1")

    await voices(database, RemovalsDown(storage)).soft_delete_voice(claims_of(row["owner_id"]), row["id"])  # type: ignore[arg-type]

    assert one(db, "select deleted_at from voices where id = %s", (row["id"],))["deleted_at"] is not None
    assert recorded_sha256(db, row) is not None
    assert await settle_manifests(database, storage, limit=10) == 1
    with pytest.raises(NotFound):
        await read(storage, row)
    assert recorded_sha256(db, row) is None
    assert await settle_manifests(database, storage, limit=10) == 0


class UploadsDown:
    """Storage whose uploads fail as unreachable while `down`; everything else is the stand-in's."""

    def __init__(self, storage: ObjectStorage) -> None:
        self.storage = storage
        self.down = True

    async def upload(self, bucket: str, path: str, data: bytes, content_type: str, *, upsert: bool = False) -> None:
        if self.down:
            raise StorageUnavailable("storage is unreachable")
        await self.storage.upload(bucket, path, data, content_type, upsert=upsert)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)


@pytest.fixture
async def ctx(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> AsyncIterator[WorkerContext]:
    async with open_lifecycle(cpu, db_dsn, tmp_path) as lifecycle:
        yield lifecycle


async def test_the_clone_step_writes_the_manifest_of_the_voice_it_made_ready(ctx: WorkerContext, db: Db) -> None:
    row = local_attempt(db)

    assert (await process_attempt(ctx, row["attempt_id"], "worker-1")).status == "ready"

    manifest = await read(ctx.storage, row)
    assert (manifest["provider"], manifest["providerVoiceId"]) == ("local", row["local_voice"])
    stored = await ctx.storage.download(BUCKET, paths.manifest(row["owner_id"], row["id"]))
    assert recorded_sha256(db, row) == hashlib.sha256(stored).hexdigest()
    # The manifest describes the voice as the attempt's completion left it.
    voice = one(db, "select updated_at from voices where id = %s", (row["id"],))
    assert datetime.fromisoformat(manifest["updatedAt"]) == voice["updated_at"]


@pytest.mark.parametrize("leased", [False, True], ids=["claimed", "leased by the read"])
async def test_the_clone_step_takes_a_connection_once_per_round_trip_of_the_attempt_path(
    ctx: WorkerContext, db: Db, monkeypatch: pytest.MonkeyPatch, leased: bool
) -> None:
    """The attempt path's units of work (issue 48): the claim, the provider's voice, the likeness probe's read,
    the completion with the probe's judgement and the manifest's read in one pipeline, the manifest's
    announcement, and its confirmation after the upload. An attempt the clone queue's read leased needs no
    claim, and its probe no read: the read handed it what the probe reads."""
    row = local_attempt(db)
    handed = None
    if leased:
        async with ctx.db.service_transaction() as conn:
            rows = await attempts.read_and_lease(
                conn, queues.CLONE, vt=30, qty=100, lease_owner="worker-1", lease_seconds=60
            )
        [handed] = [found["leased"] for found in rows if found["message"]["attemptId"] == str(row["attempt_id"])]
    taken = 0
    getconn = ctx.db.pool.getconn

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal taken
        taken += 1
        return await getconn(*args, **kwargs)

    monkeypatch.setattr(ctx.db.pool, "getconn", counted)

    outcome = await process_attempt(ctx, row["attempt_id"], "worker-1", leased=handed, read_at=time.monotonic())
    assert outcome.status == "ready"

    assert taken == (4 if leased else 6)
    judged = one(
        db, "select likeness_source, likeness_error from voice_clone_attempts where id = %s", (row["attempt_id"],)
    )
    assert judged == {"likeness_source": "probe", "likeness_error": "no_sample"}
    assert (await read(ctx.storage, row))["likenessError"] == "no_sample"


async def test_a_manifest_storage_could_not_take_leaves_the_attempt_ready_and_comes_with_the_next_delivery(
    ctx: WorkerContext, db: Db
) -> None:
    row = local_attempt(db)
    storage = UploadsDown(ctx.storage)
    down = dataclasses.replace(ctx, storage=storage)

    with pytest.raises(StorageUnavailable):
        await process_attempt(down, row["attempt_id"], "worker-1")

    attempt = one(db, "select status, runtime_status from voice_clone_attempts where id = %s", (row["attempt_id"],))
    assert attempt == {"status": "ready", "runtime_status": "synced"}
    assert recorded_sha256(db, row) is None
    with pytest.raises(NotFound):
        await read(ctx.storage, row)

    storage.down = False
    assert (await process_attempt(down, row["attempt_id"], "worker-1")).status == "ready"
    assert (await read(ctx.storage, row))["providerVoiceId"] == row["local_voice"]
    stored = await ctx.storage.download(BUCKET, paths.manifest(row["owner_id"], row["id"]))
    assert recorded_sha256(db, row) == hashlib.sha256(stored).hexdigest()


def second_attempt(db_dsn: str, row: dict[str, Any]) -> dict[str, Any]:
    """Another queued `custom_voice_id` attempt for the voice of `row` (`local_attempt`), naming another voice
    the `local` provider has; inserted by another session that waits no longer than TRANSITION_SECONDS for a
    lock (the insert's triggers update the voice)."""
    local_voice = f"local-{uuid.uuid4().hex[:12]}"
    with psycopg.connect(db_dsn, autocommit=True) as other:
        other.execute("select set_config('lock_timeout', %s, false)", (f"{TRANSITION_SECONDS}s",))
        other.execute(
            "insert into voicegate.local_voices (voice_id, name, language, enrolment_key, profile)"
            " select %s, name, language, %s, profile from voicegate.local_voices where voice_id = %s",
            (local_voice, f"key-{local_voice}", row["local_voice"]),
        )
        attempt = one(
            other,
            "insert into voice_clone_attempts (owner_id, voice_id, provider, source, preview_required,"
            " provider_voice_id) values (%s, %s, 'local', 'custom_voice_id', false, %s) returning id",
            (row["owner_id"], row["id"], local_voice),
        )
    return {"attempt_id": attempt["id"], "local_voice": local_voice}


async def test_an_attempt_completing_for_the_voice_is_not_held_back_by_its_manifest_upload(
    ctx: WorkerContext, db: Db, db_dsn: str
) -> None:
    row = local_attempt(db)
    held = HeldUpload(ctx.storage)
    first = asyncio.create_task(process_attempt(dataclasses.replace(ctx, storage=held), row["attempt_id"], "worker-1"))
    try:
        await asyncio.wait_for(held.entered.wait(), 30)
        # The first attempt is ready and its manifest's upload is under way; a second attempt for the same
        # voice moves the voice to its own provider voice meanwhile, without waiting for Storage.
        second = await asyncio.to_thread(second_attempt, db_dsn, row)
        done = process_attempt(ctx, second["attempt_id"], "worker-2")
        assert (await asyncio.wait_for(done, TRANSITION_SECONDS)).status == "ready"
        voice_now = one(db, "select provider_voice_id from voices where id = %s", (row["id"],))
        assert voice_now["provider_voice_id"] == second["local_voice"]
        assert not first.done()
    finally:
        held.release.set()
        assert (await asyncio.wait_for(first, 30)).status == "ready"
    # The first writer's upload landed last; it found the voice changed and wrote it as it now is.
    stored = await ctx.storage.download(BUCKET, paths.manifest(row["owner_id"], row["id"]))
    assert settled(db, stored, row)["providerVoiceId"] == second["local_voice"]


class ManifestsAtOnce:
    """Storage that takes a manifest at once (no wait), so that writers started together stay in step: their
    announcements and their confirmations are each sent together (`Database.grouped`)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def upload(self, bucket: str, path: str, data: bytes, content_type: str, *, upsert: bool = False) -> None:
        self.objects[path] = data


async def read_voice_row(database: Database, voice_id: uuid.UUID) -> dict[str, Any]:
    found = await manifest.read_voice(database, voice_id)
    assert found is not None
    return found


async def test_writers_in_step_confirm_together_each_as_its_own_voice_is(db: Db, database: Database) -> None:
    rows = [voice(db, "local", f"local-step-{n}") for n in range(3)]
    storage = ManifestsAtOnce()
    reads = [await read_voice_row(database, row["id"]) for row in rows]
    # The second voice changes after its writer read it: that writer's confirmation finds it changed, so it reads
    # it again and writes again; the others are confirmed in one statement, in one transaction.
    db.execute("update voices set name = 'renamed' where id = %s", (rows[1]["id"],))
    written = await asyncio.gather(
        *(
            write_manifest(
                database,
                storage,
                voice_id=row["id"],
                provider="local",
                provider_voice_id=row["provider_voice_id"],
                read=read,
            )
            for row, read in zip(rows, reads, strict=True)
        )
    )
    assert written == [True, True, True]
    for row in rows:
        assert settled(db, storage.objects[paths.manifest(row["owner_id"], row["id"])], row)["voiceId"] == str(
            row["id"]
        )
    confirmed = db.execute(
        "select name, xmin::text from voicegate.service_written_objects where name = any(%s)",
        ([paths.manifest(row["owner_id"], row["id"]) for row in rows],),
    ).fetchall()
    by_name = dict(confirmed)
    first, changed, last = (by_name[paths.manifest(row["owner_id"], row["id"])] for row in rows)
    assert first == last
    assert changed != first


async def test_two_writers_of_one_manifest_in_step_are_confirmed_one_after_the_other(
    db: Db, database: Database
) -> None:
    row = voice(db, "local", "local-twice")
    storage = ManifestsAtOnce()
    read = await read_voice_row(database, row["id"])
    # One statement cannot record one object twice: the group fails, and each writer confirms alone.
    kept = {"voice_id": row["id"], "provider": "local", "provider_voice_id": "local-twice", "read": read}
    written = await asyncio.gather(*(write_manifest(database, storage, **kept) for _ in range(2)))
    assert written == [True, True]
    assert (
        settled(db, storage.objects[paths.manifest(row["owner_id"], row["id"])], row)["providerVoiceId"]
        == "local-twice"
    )


async def test_the_sweep_reads_a_page_of_the_records_at_a_time_and_comes_round_to_every_one(
    db: Db, database: Database, storage: ObjectStorage
) -> None:
    owner = create_user(db)
    consent = seed_consent(db, owner)
    live = [
        one(
            db,
            "insert into voices (owner_id, name, consent_id) values (%s, %s, %s) returning id",
            (owner, f"v{n}", consent),
        )["id"]
        for n in range(25)
    ]
    gone = uuid.UUID("ffffffff-ffff-4fff-bfff-ffffffffffff")  # its record sorts after every live voice's
    for voice_id in [*live, gone]:
        db.execute(
            "insert into voicegate.service_written_objects (bucket_id, name, sha256, size_bytes)"
            " values (%s, %s, repeat('a', 64), 2)",
            (BUCKET, paths.manifest(owner, voice_id)),
        )
    cursor = RecordCursor()

    # Ten records a sweep: the gone voice's record is read, and settled, on the third.
    assert [await settle_manifests(database, storage, limit=10, cursor=cursor) for _ in range(3)] == [0, 0, 1]
    assert cursor.after == "", "past the last record: the next sweep starts over"
    assert recorded_names(db) == {paths.manifest(owner, voice_id) for voice_id in live}
    assert await settle_manifests(database, storage, limit=10, cursor=cursor) == 0
    assert cursor.after == paths.manifest(owner, sorted(live, key=str)[9])


def recorded_names(db: Db) -> set[str]:
    rows = db.execute("select name from voicegate.service_written_objects where bucket_id = %s", (BUCKET,))
    return {row[0] for row in rows.fetchall()}
