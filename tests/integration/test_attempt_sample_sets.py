"""An attempt's sample set on a real database: made with the attempt, copied by its retry, read in order;
the owner's own samples only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.records import attempts
from devkit.db import create_user, one, seed_consent
from tests.integration.conftest import open_lifecycle
from tests.support import seed_voice


@pytest.fixture
async def ctx(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> AsyncIterator[WorkerContext]:
    async with open_lifecycle(cpu, db_dsn, tmp_path) as lifecycle:
        yield lifecycle


def ready_sample(db: psycopg.Connection[Any], owner: uuid.UUID) -> uuid.UUID:
    sample: uuid.UUID = one(
        db,
        "insert into voice_samples (owner_id, consent_id, object_path, sniffed_type, provider, status)"
        " values (%s, %s, %s, 'audio/wav', 'local', 'ready') returning id",
        (owner, seed_consent(db, owner), f"{owner}/samples/{uuid.uuid4()}/original"),
    )["id"]
    return sample


async def test_a_retry_enrols_the_same_set_in_the_same_order(ctx: WorkerContext, db: psycopg.Connection[Any]) -> None:
    owner = create_user(db)
    voice = seed_voice(db, owner)
    ids = [ready_sample(db, owner) for _ in range(3)]
    order = [ids[2], ids[0], ids[1]]
    async with ctx.db.service_transaction() as conn:
        first = await attempts.create(
            conn,
            owner_id=owner,
            voice_id=voice,
            provider="local",
            source="sample_upload",
            reflection_id=None,
            sample_id=order[0],
            sample_ids=order,
        )
        retried = await attempts.retry(conn, first.id)
        members = await attempts.sample_set(conn, retried.id)
    assert retried.id != first.id
    assert [(m.sample_id, m.position) for m in members] == [(order[0], 0), (order[1], 1), (order[2], 2)]
    assert retried.sample_id == order[0]


async def test_a_set_holds_only_the_attempt_owners_samples(ctx: WorkerContext, db: psycopg.Connection[Any]) -> None:
    owner, stranger = create_user(db), create_user(db)
    voice = seed_voice(db, owner)
    mine, theirs = ready_sample(db, owner), ready_sample(db, stranger)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="own samples"):
        async with ctx.db.service_transaction() as conn:
            await attempts.create(
                conn,
                owner_id=owner,
                voice_id=voice,
                provider="local",
                source="sample_upload",
                reflection_id=None,
                sample_id=mine,
                sample_ids=[mine, theirs],
            )
    # Nothing of it was written: the attempt went with its set.
    assert one(db, "select count(*) as n from voice_clone_attempts where voice_id = %s", (voice,))["n"] == 0
