"""Verification that meets a voice the provider no longer has, on a real database and Storage and the
self-hosted fake: the attempt hands over to a `provider_churn` attempt enrolling from the stored sample
(jobs waiting for it follow), once; without a sample it fails saying why."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backend.clone.step import process_attempt
from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from devkit.audio_corpus import speech_wav
from devkit.db import create_user, one, seed_consent
from fakes import SelfhostedFake, serve
from tests.integration.conftest import open_lifecycle

DEAD = "voicegate_" + "d" * 24


@pytest.fixture
def server() -> Iterator[tuple[SelfhostedFake, str]]:
    fake = SelfhostedFake("registry")
    with serve(fake) as url:
        yield fake, url


@pytest.fixture
async def ctx(
    cpu: CpuExecutor, db_dsn: str, tmp_path: Path, server: tuple[SelfhostedFake, str]
) -> AsyncIterator[WorkerContext]:
    async with open_lifecycle(cpu, db_dsn, tmp_path, SELFHOSTED_BASE_URL=server[1]) as lifecycle:
        yield lifecycle


async def reusing_attempt(ctx: WorkerContext, db: psycopg.Connection[Any], *, with_sample: bool) -> dict[str, Any]:
    """A voice taken back to the self-hosted server with a reference the server has lost since, and a
    job waiting for that attempt."""
    owner = create_user(db)
    voice = one(db, "insert into voices (owner_id, name) values (%s, 'Ada') returning id", (owner,))["id"]
    sample_id = None
    if with_sample:
        path = f"{owner}/{voice}/original"
        await ctx.storage.upload("voice-samples", path, speech_wav(), "audio/wav")
        sample_id = one(
            db,
            "insert into voice_samples (owner_id, voice_id, consent_id, object_path, sniffed_type, provider, status)"
            " values (%s, %s, %s, %s, 'audio/wav', 'elevenlabs', 'ready') returning id",
            (owner, voice, seed_consent(db, owner), path),
        )["id"]
    attempt = one(
        db,
        "insert into voice_clone_attempts (owner_id, voice_id, sample_id, provider, source, preview_required,"
        " provider_voice_id) values (%s, %s, %s, 'selfhosted', 'provider_migration', false, %s) returning *",
        (owner, voice, sample_id, DEAD),
    )
    job = one(
        db,
        "insert into synthesis_jobs (owner_id, voice_id, attempt_id, input_text) values (%s, %s, %s, 'hi')"
        " returning id",
        (owner, voice, attempt["id"]),
    )
    return {"attempt": attempt, "voice": voice, "job": job["id"], "sample": sample_id}


def attempts_of(db: psycopg.Connection[Any], voice: uuid.UUID) -> list[dict[str, Any]]:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("select * from voice_clone_attempts where voice_id = %s order by created_at", (voice,))
        return cur.fetchall()


async def test_a_lost_reference_is_enrolled_again_and_its_jobs_follow(
    ctx: WorkerContext, db: psycopg.Connection[Any], server: tuple[SelfhostedFake, str]
) -> None:
    fake, _ = server
    seeded = await reusing_attempt(ctx, db, with_sample=True)

    outcome = await process_attempt(ctx, seeded["attempt"]["id"], "worker-1")

    assert outcome.status == "failed"
    old, churn = attempts_of(db, seeded["voice"])
    assert (old["last_error_code"], str(churn["id"]) in old["last_error_message"]) == ("voice_not_found", True)
    assert (churn["source"], churn["status"], churn["sample_id"]) == ("provider_churn", "queued", seeded["sample"])
    job = one(db, "select status, attempt_id from synthesis_jobs where id = %s", (seeded["job"],))
    assert job == {"status": "queued", "attempt_id": churn["id"]}
    audit = one(db, "select actor, detail from voicegate.audit_events where action = 'voice.reenrol'")
    assert (audit["actor"], audit["detail"]["lost_provider_voice_id"]) == ("worker:worker-1", DEAD)

    assert (await process_attempt(ctx, churn["id"], "worker-1")).status == "ready"
    voice = one(db, "select status, tts_provider, provider_voice_id from voices where id = %s", (seeded["voice"],))
    assert voice == {"status": "ready", "tts_provider": "selfhosted", "provider_voice_id": next(iter(fake.voices))}

    # The new voice lost in turn while it is verified again: no third attempt.
    fake.reset()
    retry = one(
        db,
        "insert into voice_clone_attempts (owner_id, voice_id, sample_id, provider, source, preview_required,"
        " provider_voice_id) select owner_id, voice_id, sample_id, provider, 'provider_churn', false, %s"
        " from voice_clone_attempts where id = %s returning id",
        (voice["provider_voice_id"], churn["id"]),
    )
    assert (await process_attempt(ctx, retry["id"], "worker-1")).status == "failed"
    assert len(attempts_of(db, seeded["voice"])) == 3


async def test_without_a_sample_the_attempt_fails_saying_why(ctx: WorkerContext, db: psycopg.Connection[Any]) -> None:
    seeded = await reusing_attempt(ctx, db, with_sample=False)

    assert (await process_attempt(ctx, seeded["attempt"]["id"], "worker-1")).status == "failed"

    [failed] = attempts_of(db, seeded["voice"])
    assert failed["last_error_code"] == "sample_missing"
    assert "no stored sample remains" in failed["last_error_message"]
