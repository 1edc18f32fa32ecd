"""sweep-orphan-objects, status and the maintenance sweep on orphans: objects in voicegate's buckets that
no row claims, and files the Storage stand-in holds with no object row (a crash mid-upload leaves one),
past the grace period. A dry run changes nothing; --apply removes exactly those, each with an audit
event, and leaves everything claimed or recent; a file is never removed under a write that commits."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from backend.db.pool import create_pool
from backend.db.units import Database
from backend.settings import Settings
from backend.storage import orphans, paths
from devkit.db import one, seed_consent
from queue_consumers.maintenance import sweep as maintenance_sweep
from scripts.status import main as status_main
from scripts.sweep_orphan_objects import main
from standins.storage.in_process import standalone_storage
from standins.storage.orphan_files import OrphanFile, remove_orphan_file
from tests.integration.scripts.conftest import Runner, Scene, audit_events, snapshot

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)
OLD = timedelta(hours=2)  # past the default grace period of an hour


def store(dsn: str, root: Path, objects: list[tuple[str, str]]) -> None:
    """Upload (bucket, path) objects to the local Storage stand-in, as voicegate would have."""

    async def upload() -> None:
        async with standalone_storage(dsn, root) as storage:
            for bucket, path in objects:
                await storage.upload(bucket, path, WAV, "audio/wav")

    asyncio.run(upload())


def backdate(db: psycopg.Connection[Any], root: Path, objects: list[tuple[str, str]]) -> None:
    """Make objects (their rows and files) look last written two hours ago."""
    for bucket, path in objects:
        db.execute(
            "update storage.objects set created_at = now() - %s, updated_at = now() - %s"
            " where bucket_id = %s and name = %s",
            (OLD, OLD, bucket, path),
        )
        age(root / bucket / path)


def age(path: Path) -> None:
    then = time.time() - OLD.total_seconds()
    os.utime(path, (then, then))


def stray(root: Path, relative: str, *, old: bool = True) -> Path:
    """A file in the stand-in's directory that no row describes."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(WAV)
    if old:
        age(path)
    return path


def objects(db: psycopg.Connection[Any]) -> set[tuple[str, str]]:
    return {(row[0], row[1]) for row in db.execute("select bucket_id, name from storage.objects")}


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@dataclass
class Orphans:
    root: Path
    claimed: list[tuple[str, str]]
    orphan_objects: list[tuple[str, str]]
    recent_object: tuple[str, str]
    orphan_files: list[str]
    recent_files: list[str]

    @property
    def expected(self) -> set[tuple[str, str | None, str]]:
        """(kind, bucket, name) of every orphan past the grace period."""
        found: set[tuple[str, str | None, str]] = {("object", b, n) for b, n in self.orphan_objects}
        for relative in self.orphan_files:
            bucket, _, name = relative.partition("/")
            found.add(("file", None if bucket == ".uploads" else bucket, name))
        return found


@pytest.fixture
def seeded(scene: Scene, db_dsn: str, tmp_path: Path) -> Orphans:
    db, owner = scene.conn, scene.owner
    root = tmp_path / "storage"
    # Claimed, each by the rule voicegate's own paths follow (built here by the Python functions).
    sample_id = uuid.uuid4()
    original = paths.sample_upload(owner, sample_id)
    one(
        db,
        "insert into voice_samples (id, owner_id, consent_id, object_path) values (%s, %s, %s, %s) returning id",
        (sample_id, owner, seed_consent(db, owner), original),
    )
    folder = f"{owner}/{uuid.uuid4()}"
    one(
        db,
        "insert into voice_samples (owner_id, consent_id, object_path, processed_object_path)"
        " values (%s, %s, %s, %s) returning id",
        (owner, seed_consent(db, owner), f"{folder}/take.wav", f"{folder}/clean.wav"),
    )
    draft = scene.voice()
    attempt = scene.attempt()
    job = one(
        db,
        "insert into synthesis_jobs (owner_id, voice_id, input_text) values (%s, %s, 'hi') returning id",
        (owner, attempt["voice_id"]),
    )["id"]
    claimed = [
        ("voice-samples", original),
        ("voice-samples", paths.processed(original)),  # written before it is recorded
        ("voice-samples", f"{folder}/take.wav"),
        ("voice-samples", f"{folder}/clean.wav"),
        ("voice-samples", paths.voice_sample(owner, draft)),  # awaiting its finalize
        ("voice-previews", paths.preview(owner, attempt["id"])),
        ("voice-renders", paths.render(owner, job)),
    ]
    # Orphans: rows never committed or gone, a voice no longer a draft, a file a client put there.
    cloned = scene.voice()
    db.execute("update voices set status = 'ready' where id = %s", (cloned,))
    orphan_objects = [
        ("voice-samples", paths.sample_upload(owner, uuid.uuid4())),
        ("voice-samples", paths.processed(paths.sample_upload(owner, uuid.uuid4()))),
        ("voice-samples", paths.voice_sample(owner, cloned)),
        ("voice-samples", f"{owner}/hello.wav"),
        ("voice-previews", paths.preview(owner, uuid.uuid4())),
        ("voice-renders", paths.render(owner, uuid.uuid4())),
    ]
    recent_object = ("voice-samples", paths.sample_upload(owner, uuid.uuid4()))  # an upload whose row is coming
    store(db_dsn, root, [*claimed, *orphan_objects, recent_object])
    backdate(db, root, [*claimed, *orphan_objects])
    # Files with no row at all: a crash between the rename and the commit, a dead upload's temp file.
    orphan_files = [f"voice-samples/{paths.sample_upload(owner, uuid.uuid4())}", ".uploads/0a1b2c3d4e5f"]
    recent_files = [f"voice-samples/{paths.sample_upload(owner, uuid.uuid4())}", ".uploads/f5e4d3c2b1a0"]
    for relative in orphan_files:
        stray(root, relative)
    for relative in recent_files:
        stray(root, relative, old=False)
    return Orphans(root, claimed, orphan_objects, recent_object, orphan_files, recent_files)


def found(result: dict[str, Any]) -> set[tuple[str, str | None, str]]:
    return {(item["kind"], item["bucket_id"], item["name"]) for item in result["items"]}


def test_the_swept_buckets_are_the_areas_own() -> None:
    assert orphans.BUCKETS == (paths.SAMPLES, paths.PREVIEWS, paths.RENDERS)


def test_a_dry_run_lists_exactly_the_orphans_past_the_grace_period_and_changes_nothing(
    run_script: Runner, seeded: Orphans, db: psycopg.Connection[Any]
) -> None:
    before, stored = snapshot(db), files(seeded.root)
    result = run_script(main, "--json", "--local-storage-dir", str(seeded.root))
    assert result.code == 1, result.err
    assert found(result.json) == seeded.expected
    assert {item["outcome"] for item in result.json["items"]} == {"would remove"}
    assert result.counts == {
        "problems": 8,
        "removed": 0,
        "skipped": 0,
        "errors": 0,
        "fixed": 0,
        "unfixed": 8,
    }
    assert snapshot(db) == before
    assert files(seeded.root) == stored

    table = run_script(main, "--local-storage-dir", str(seeded.root))
    assert table.code == 1
    assert "dry run: nothing was changed" in table.out
    assert "grace period 1:00:00" in table.out


def test_apply_removes_exactly_the_orphans_past_the_grace_period_each_with_an_audit_event(
    run_script: Runner, seeded: Orphans, db: psycopg.Connection[Any]
) -> None:
    result = run_script(main, "--apply", "--json", "--local-storage-dir", str(seeded.root), "--batch-size", "2")
    assert result.code == 0, result.out + result.err
    assert found(result.json) == seeded.expected
    assert {item["outcome"] for item in result.json["items"]} == {"removed"}
    assert (result.counts["removed"], result.counts["unfixed"]) == (8, 0)

    assert objects(db) == {*seeded.claimed, seeded.recent_object}
    assert files(seeded.root) == {
        *(f"{b}/{n}" for b, n in [*seeded.claimed, seeded.recent_object]),
        *seeded.recent_files,
    }
    events = audit_events(db)
    assert {(e["action"], e["subject_type"]) for e in events} == {
        ("storage.orphan_remove", "storage_object"),
        ("storage.orphan_file_remove", "storage_file"),
    }
    assert {(e["detail"]["bucket_id"], e["detail"]["name"]) for e in events} == {(b, n) for _, b, n in seeded.expected}
    assert {e["detail"]["run_id"] for e in events} == {result.json["runId"]}

    again = run_script(main, "--apply", "--json", "--local-storage-dir", str(seeded.root))
    assert (again.code, again.counts["problems"]) == (0, 0)


def test_a_longer_grace_period_leaves_them_all(run_script: Runner, seeded: Orphans) -> None:
    result = run_script(main, "--apply", "--json", "--grace", "3h", "--local-storage-dir", str(seeded.root))
    assert (result.code, result.counts["problems"]) == (0, 0)


def test_status_counts_the_orphans(run_script: Runner, seeded: Orphans) -> None:
    result = run_script(status_main, "--json", "--local-storage-dir", str(seeded.root))
    assert result.code == 1
    assert (result.counts["orphan_objects"], result.counts["orphan_files"]) == (6, 2)
    assert any("sweep-orphan-objects" in note for note in result.json["notes"])
    run_script(main, "--apply", "--local-storage-dir", str(seeded.root))
    after = run_script(status_main, "--json", "--local-storage-dir", str(seeded.root))
    assert after.code == 0
    assert (after.counts["orphan_objects"], after.counts["orphan_files"]) == (0, 0)


def test_the_maintenance_sweep_removes_them_too(seeded: Orphans, db_dsn: str, db: psycopg.Connection[Any]) -> None:
    settings = Settings(data_dir=seeded.root.parent)  # embedded: its stand-in's root is data_dir/storage

    async def run() -> int:
        pool = create_pool(db_dsn, settings.pool_limits)
        await pool.open(wait=True)
        try:
            async with standalone_storage(db_dsn, seeded.root) as storage:
                return (await maintenance_sweep(settings, Database(pool), storage)).orphans_removed
        finally:
            await pool.close()

    assert asyncio.run(run()) == 8
    assert objects(db) == {*seeded.claimed, seeded.recent_object}
    assert {e["actor"] for e in audit_events(db)} == {"maintenance"}
    # The sweep also wrote down that this worker has no project webhook endpoint.
    assert db.execute("select configured from voicegate.project_webhook").fetchall() == [(False,)]


def waiting_for_an_advisory_lock(db: psycopg.Connection[Any]) -> bool:
    row = db.execute("select count(*) from pg_locks where locktype = 'advisory' and not granted").fetchone()
    return bool(row and row[0])


def test_a_file_is_not_removed_from_under_a_write_that_commits_its_row(
    seeded: Orphans, db_dsn: str, db: psycopg.Connection[Any]
) -> None:
    relative = seeded.orphan_files[0]
    bucket, _, name = relative.partition("/")
    file = OrphanFile(bucket_id=bucket, name=name, size_bytes=len(WAV), written_at=datetime.now(UTC), outcome="")

    async def remove() -> bool:
        pool = create_pool(db_dsn, Settings(db_timeout=10).pool_limits)
        await pool.open(wait=True)
        try:
            return await remove_orphan_file(
                Database(pool), seeded.root, file, written_before=datetime.now(UTC) - timedelta(hours=1), actor="test"
            )
        finally:
            await pool.close()

    with psycopg.connect(db_dsn) as writer:
        # A write of that very object in progress: it holds the object's lock until its row commits.
        writer.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{bucket}/{name}",))
        writer.execute(
            "insert into storage.objects (bucket_id, name, metadata) values (%s, %s, %s)",
            (bucket, name, msgspec.json.encode({"size": len(WAV)}).decode()),
        )
        loop = asyncio.new_event_loop()
        try:
            removal = loop.create_task(remove())
            deadline = time.monotonic() + 10
            while not waiting_for_an_advisory_lock(db):
                assert not removal.done(), "the sweep must wait for the write's lock"
                assert time.monotonic() < deadline, "the sweep never asked for the lock"
                loop.run_until_complete(asyncio.sleep(0.02))
            writer.commit()
            assert loop.run_until_complete(removal) is False
        finally:
            loop.close()
    assert (seeded.root / relative).exists()
    assert audit_events(db) == []
