"""The voice manifest on a real database and the Storage stand-in: written for the provider voice the row
carries, rewritten when the voice moves to another provider, never by a writer that lost the race to a
newer provider voice, and never for a deleted voice; removed with the voice. The clone step writes it once
the attempt is ready; a failed upload leaves the attempt ready and the manifest to the message's next
delivery, and an upload under way holds the voice row only."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backend.auth.verify import UserClaims
from backend.clone.manifest import BUCKET, manifest_path, write_manifest
from backend.clone.step import process_attempt
from backend.context import Lifecycle
from backend.cpu import CpuExecutor
from backend.db.pool import Pool, create_pool
from backend.errors import NotFound, StorageUnavailable
from backend.http.storage_in_process import standalone_storage
from backend.settings import settings_from_env
from backend.storage.client import ObjectStorage
from backend.voices.service import soft_delete_voice
from tests.integration.conftest import open_lifecycle
from tests.support import create_user, local_attempt, one, seed_consent

Db = psycopg.Connection[Any]


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[Pool]:
    pool = create_pool(db_dsn, settings_from_env({}).pool_limits)
    await pool.open(wait=True)
    yield pool
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


async def read(storage: ObjectStorage, row: dict[str, Any]) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(await storage.download(BUCKET, manifest_path(row["owner_id"], row["id"])))
    return manifest


def recorded_sha256(db: Db, row: dict[str, Any]) -> str | None:
    """The SHA-256 recorded for the voice's manifest when it was written, if any."""
    found = db.execute(
        "select sha256 from voicegate.service_written_objects where bucket_id = %s and name = %s",
        (BUCKET, manifest_path(row["owner_id"], row["id"])),
    ).fetchone()
    return None if found is None else str(found[0])


async def test_the_manifest_is_rewritten_when_the_voice_changes_provider(
    db: Db, pool: Pool, storage: ObjectStorage
) -> None:
    row = voice(db, "local", "local-1")
    assert await write_manifest(
        pool, storage, voice_id=row["id"], provider="local", provider_voice_id="local-1", sample_id=None
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
        pool, storage, voice_id=row["id"], provider="elevenlabs", provider_voice_id="el-1", sample_id=None
    )
    moved = await read(storage, row)
    assert (moved["provider"], moved["providerVoiceId"], moved["targetModel"]) == ("elevenlabs", "el-1", None)
    stored = await storage.download(BUCKET, manifest_path(row["owner_id"], row["id"]))
    assert recorded_sha256(db, row) == hashlib.sha256(stored).hexdigest()

    # A late writer for the provider voice the row no longer carries changes nothing.
    assert not await write_manifest(
        pool, storage, voice_id=row["id"], provider="local", provider_voice_id="local-1", sample_id=None
    )
    assert await read(storage, row) == moved


async def test_a_deleted_voice_keeps_no_manifest(db: Db, pool: Pool, storage: ObjectStorage) -> None:
    row = voice(db, "local", "local-2")
    await write_manifest(
        pool, storage, voice_id=row["id"], provider="local", provider_voice_id="local-2", sample_id=None
    )
    claims = claims_of(row["owner_id"])
    assert recorded_sha256(db, row) is not None

    await soft_delete_voice(pool, storage, claims, row["id"])

    with pytest.raises(NotFound):
        await read(storage, row)
    assert recorded_sha256(db, row) is None
    assert not await write_manifest(
        pool, storage, voice_id=row["id"], provider="local", provider_voice_id="local-2", sample_id=None
    )
    with pytest.raises(NotFound):
        await read(storage, row)
    with pytest.raises(NotFound):
        await soft_delete_voice(pool, storage, claims_of(uuid.uuid4()), row["id"])


class HeldUpload:
    """Storage whose uploads wait until released: a slow Storage, while the manifest's transaction is open."""

    def __init__(self, storage: ObjectStorage) -> None:
        self.storage = storage
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def upload(self, bucket: str, path: str, data: bytes, content_type: str, *, upsert: bool = False) -> None:
        self.entered.set()
        await self.release.wait()
        await self.storage.upload(bucket, path, data, content_type, upsert=upsert)


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


async def test_a_manifest_upload_in_progress_holds_back_deletion_but_not_rows_that_refer_to_the_voice(
    db: Db, pool: Pool, storage: ObjectStorage, db_dsn: str
) -> None:
    row = voice(db, "local", "local-1")
    held = HeldUpload(storage)
    writing = asyncio.create_task(
        write_manifest(pool, held, voice_id=row["id"], provider="local", provider_voice_id="local-1", sample_id=None)
    )
    try:
        await asyncio.wait_for(held.entered.wait(), 30)
        # A synthesis job's insert checks its foreign key with `key share`: it must not wait for Storage.
        key_share = "select 1 from voices where id = %s for key share"
        assert await asyncio.to_thread(locks_within, db_dsn, key_share, row["id"])
        # The voice's deletion still waits for the manifest (its removal must come after this write).
        assert not await asyncio.to_thread(locks_within, db_dsn, "delete from voices where id = %s", row["id"])
    finally:
        held.release.set()
        assert await asyncio.wait_for(writing, 30)
    assert (await read(storage, row))["providerVoiceId"] == "local-1"


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
async def ctx(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> AsyncIterator[Lifecycle]:
    async with open_lifecycle(cpu, db_dsn, tmp_path) as lifecycle:
        yield lifecycle


async def test_the_clone_step_writes_the_manifest_of_the_voice_it_made_ready(ctx: Lifecycle, db: Db) -> None:
    row = local_attempt(db)

    assert (await process_attempt(ctx, row["attempt_id"], "worker-1")).status == "ready"

    manifest = await read(ctx.storage, row)
    assert (manifest["provider"], manifest["providerVoiceId"]) == ("local", row["local_voice"])
    stored = await ctx.storage.download(BUCKET, manifest_path(row["owner_id"], row["id"]))
    assert recorded_sha256(db, row) == hashlib.sha256(stored).hexdigest()
    # The manifest describes the voice as the attempt's completion left it.
    voice = one(db, "select updated_at from voices where id = %s", (row["id"],))
    assert datetime.fromisoformat(manifest["updatedAt"]) == voice["updated_at"]


async def test_a_manifest_storage_could_not_take_leaves_the_attempt_ready_and_comes_with_the_next_delivery(
    ctx: Lifecycle, db: Db
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
    stored = await ctx.storage.download(BUCKET, manifest_path(row["owner_id"], row["id"]))
    assert recorded_sha256(db, row) == hashlib.sha256(stored).hexdigest()


async def test_the_clone_steps_manifest_upload_holds_back_deletion_and_nothing_else(
    ctx: Lifecycle, db: Db, db_dsn: str
) -> None:
    row = local_attempt(db)
    held = HeldUpload(ctx.storage)
    step = asyncio.create_task(process_attempt(dataclasses.replace(ctx, storage=held), row["attempt_id"], "worker-1"))
    try:
        await asyncio.wait_for(held.entered.wait(), 30)
        # The attempt is ready already, and free: a cancel, a supersede or its sample's deletion (which
        # sets its sample_id to null) does not wait for Storage.
        attempt = one(db, "select status from voice_clone_attempts where id = %s", (row["attempt_id"],))
        assert attempt["status"] == "ready"
        attempt_update = "select 1 from voice_clone_attempts where id = %s for no key update"
        assert await asyncio.to_thread(locks_within, db_dsn, attempt_update, row["attempt_id"])
        key_share = "select 1 from voices where id = %s for key share"
        assert await asyncio.to_thread(locks_within, db_dsn, key_share, row["id"])
        assert not await asyncio.to_thread(locks_within, db_dsn, "delete from voices where id = %s", row["id"])
    finally:
        held.release.set()
        assert (await asyncio.wait_for(step, 30)).status == "ready"
    assert (await read(ctx.storage, row))["providerVoiceId"] == row["local_voice"]
