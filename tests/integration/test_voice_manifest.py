"""The voice manifest on a real database and the Storage stand-in: written for the provider voice the row
carries, rewritten when the voice moves to another provider, never by a writer that lost the race to a
newer provider voice, and never for a deleted voice; removed with the voice."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backend.auth.verify import UserClaims
from backend.db.pool import Pool, create_pool
from backend.embedded.storage.in_process import standalone_storage
from backend.errors import NotFound
from backend.settings import settings_from_env
from backend.storage.client import ObjectStorage
from backend.voices.manifest import BUCKET, manifest_path, write_manifest
from backend.voices.service import soft_delete_voice
from tests.support import create_user, one, seed_consent

Db = psycopg.Connection[Any]


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[Pool]:
    pool = create_pool(db_dsn, settings_from_env({}))
    await pool.open(wait=True)
    yield pool
    await pool.close()


@pytest.fixture
async def storage(db_dsn: str, tmp_path: Path) -> AsyncIterator[ObjectStorage]:
    async with standalone_storage(settings_from_env({}), db_dsn, tmp_path / "storage") as client:
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
