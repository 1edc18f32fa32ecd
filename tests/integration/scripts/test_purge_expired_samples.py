"""purge-expired-samples: expired samples go with their objects (original and processed), objects
first, one audit event each; unexpired ones stay; a sample whose row cannot go keeps its objects."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from backend.db.pool import create_pool
from backend.db.units import Database
from backend.samples.purge import purge_expired_samples
from backend.settings import Settings
from devkit.db import one, seed_consent
from scripts.purge_expired_samples import main
from standins.storage.in_process import standalone_storage as local_storage
from tests.integration.scripts.conftest import Runner, Scene, audit_events, snapshot, summary_counts

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)


def store(dsn: str, root: Path, paths: list[str]) -> None:
    """Upload objects to the local Storage stand-in, as a client would have."""

    async def upload() -> None:
        async with local_storage(dsn, root) as storage:
            for path in paths:
                await storage.upload("voice-samples", path, WAV, "audio/wav")

    asyncio.run(upload())


def seed_sample(scene: Scene, *, expired: bool, processed: bool = True) -> dict[str, Any]:
    """A sample row of the scene's owner, expired a day ago or expiring in a month."""
    folder = f"{scene.owner}/{uuid.uuid4()}"
    return one(
        scene.conn,
        "insert into voice_samples (owner_id, consent_id, object_path, processed_object_path, expires_at)"
        " values (%s, %s, %s, %s, now() + %s) returning *",
        (
            scene.owner,
            seed_consent(scene.conn, scene.owner),
            f"{folder}/sample.wav",
            f"{folder}/processed.wav" if processed else None,
            timedelta(days=-1 if expired else 30),
        ),
    )


def objects(db: psycopg.Connection[Any]) -> set[str]:
    return {row[0] for row in db.execute("select name from storage.objects where bucket_id = 'voice-samples'")}


def files(root: Path) -> set[str]:
    bucket = root / "voice-samples"
    return {str(p.relative_to(bucket)) for p in bucket.rglob("*") if p.is_file()} if bucket.exists() else set()


@pytest.fixture
def seeded(scene: Scene, db_dsn: str, tmp_path: Path) -> dict[str, Any]:
    expired = seed_sample(scene, expired=True)
    gone_objects = seed_sample(scene, expired=True, processed=False)  # its object was already removed
    kept = seed_sample(scene, expired=False)
    root = tmp_path / "storage"
    store(db_dsn, root, [expired["object_path"], expired["processed_object_path"], kept["object_path"]])
    attempt = scene.attempt()
    scene.conn.execute("update voice_clone_attempts set sample_id = %s where id = %s", (expired["id"], attempt["id"]))
    return {"expired": expired, "gone_objects": gone_objects, "kept": kept, "root": root, "attempt": attempt}


def test_dry_run_lists_the_expired_samples_and_changes_nothing(
    run_script: Runner, seeded: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    before, stored = snapshot(db), files(seeded["root"])

    result = run_script(main, "--json", "--local-storage-dir", str(seeded["root"]))

    assert result.code == 1
    assert {item["sample_id"] for item in result.json["items"]} == {
        str(seeded["expired"]["id"]),
        str(seeded["gone_objects"]["id"]),
    }
    assert {item["outcome"] for item in result.json["items"]} == {"would purge"}
    assert result.counts["problems"] == result.counts["unfixed"] == 2
    assert snapshot(db) == before
    assert files(seeded["root"]) == stored


def test_apply_purges_rows_and_objects_then_finds_nothing(
    run_script: Runner, seeded: dict[str, Any], scene: Scene, db: psycopg.Connection[Any]
) -> None:
    expired, kept = seeded["expired"], seeded["kept"]

    result = run_script(main, "--apply", "--json", "--local-storage-dir", str(seeded["root"]))

    assert result.code == 0, result.out
    assert result.counts["purged"] == 2
    remaining = {row[0] for row in db.execute("select id from voice_samples")}
    assert remaining == {kept["id"]}
    assert objects(db) == files(seeded["root"]) == {kept["object_path"]}
    assert scene.row(seeded["attempt"]["id"])["sample_id"] is None
    events = audit_events(db, "sample.purge")
    assert {e["subject_id"] for e in events} == {str(expired["id"]), str(seeded["gone_objects"]["id"])}
    purged = next(e for e in events if e["subject_id"] == str(expired["id"]))
    assert sorted(purged["detail"]["removed"]) == sorted([expired["object_path"], expired["processed_object_path"]])
    assert purged["detail"]["reason"] == "expired"

    again = run_script(main, "--apply", "--json", "--local-storage-dir", str(seeded["root"]))

    assert (again.code, again.counts["problems"]) == (0, 0)


def test_a_row_that_cannot_be_deleted_keeps_its_objects(
    run_script: Runner, seeded: dict[str, Any], scene: Scene, db: psycopg.Connection[Any]
) -> None:
    expired = seeded["expired"]
    # Something in the database refuses this one deletion (here a trigger; in life a lock timeout or a
    # constraint added later): the purge must find that out before it touches Storage.
    db.execute(
        "create function pg_temp.refuse_delete() returns trigger language plpgsql"
        " as $$ begin raise exception 'sample % is held', old.id; end $$"
    )
    db.execute(
        sql.SQL(
            "create trigger refuse_delete before delete on voice_samples for each row"
            " when (old.id = {}) execute function pg_temp.refuse_delete()"
        ).format(sql.Literal(expired["id"]))
    )

    result = run_script(main, "--apply", "--json", "--local-storage-dir", str(seeded["root"]))

    assert result.code == 1
    assert (result.counts["purged"], result.counts["errors"], result.counts["unfixed"]) == (1, 1, 1)
    failed = next(item for item in result.json["items"] if item["sample_id"] == str(expired["id"]))
    assert "is held" in failed["outcome"]
    assert {expired["object_path"], expired["processed_object_path"]} <= objects(db)
    assert {expired["object_path"], expired["processed_object_path"]} <= files(seeded["root"])
    assert [e["subject_id"] for e in audit_events(db)] == [str(seeded["gone_objects"]["id"])]


def test_a_sample_spoken_from_by_a_job_is_purged_and_the_job_keeps_its_voice(
    run_script: Runner, seeded: dict[str, Any], scene: Scene, db: psycopg.Connection[Any]
) -> None:
    expired = seeded["expired"]
    voice = scene.row(seeded["attempt"]["id"])["voice_id"]
    job = db.execute(
        "insert into synthesis_jobs (owner_id, voice_id, sample_id, input_text) values (%s, %s, %s, 'hello')"
        " returning id",
        (scene.owner, voice, expired["id"]),
    ).fetchone()

    result = run_script(main, "--apply", "--json", "--local-storage-dir", str(seeded["root"]))

    assert (result.code, result.counts["purged"]) == (0, 2)
    assert db.execute("select voice_id, sample_id from synthesis_jobs where id = %s", (job[0],)).fetchone() == (
        voice,
        None,
    )


def test_table_and_json_carry_the_same_counts(run_script: Runner, seeded: dict[str, Any]) -> None:
    table = run_script(main)
    document = run_script(main, "--json")

    assert summary_counts(table.out) == document.counts
    assert document.counts["problems"] == 2


async def test_the_domain_function_purges_a_batch_through_a_pool(
    seeded: dict[str, Any], db_dsn: str, db: psycopg.Connection[Any]
) -> None:
    pool = create_pool(db_dsn, Settings(db_pool_min=1, db_pool_max=2, db_connect_timeout=10).pool_limits)
    await pool.open(wait=True)
    try:
        async with local_storage(db_dsn, seeded["root"]) as storage:
            batch = await purge_expired_samples(Database(pool), storage, limit=1, apply=True, actor="maintenance")
            rest = await purge_expired_samples(
                Database(pool), storage, limit=1, apply=True, actor="maintenance", after=batch.next_after
            )
    finally:
        await pool.close()

    assert [s.outcome for s in batch.samples + rest.samples] == ["purged", "purged"]
    assert batch.next_after is not None
    assert {e["actor"] for e in audit_events(db)} == {"maintenance"}
    assert objects(db) == {seeded["kept"]["object_path"]}
