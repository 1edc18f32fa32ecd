"""The voice manifest on a real database and the Storage stand-in: written for the provider voice the row
carries, rewritten when the voice moves to another provider, never by a writer that lost the race to a
newer provider voice, and never for a deleted voice; removed with the voice."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backend.auth.verify import UserClaims
from backend.clone.manifest import BUCKET, manifest_path, write_manifest
from backend.db.pool import Pool, create_pool
from backend.errors import NotFound
from backend.http.storage_in_process import standalone_storage
from backend.settings import settings_from_env
from backend.storage.client import ObjectStorage
from backend.voices.service import soft_delete_voice
from tests.support import create_user, one, seed_consent

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
