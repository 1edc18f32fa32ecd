"""backend.storage.integrity against the stand-in: a written object's digest is recorded with it (and not
when its upload fails), two writers of one object take turns so the record describes the bytes that
stay, a changed file is refused with an audit event on read and before a URL is signed, an object with
no record (written before records existed) is read unchecked, a removal forgets its record, and the bytes
of a write announced and still under way are taken as voicegate's, and no others."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from backend.db.pool import create_pool
from backend.db.units import Database
from backend.errors import StoredObjectAltered, UnsupportedMediaType
from backend.settings import Settings
from backend.storage import integrity
from backend.storage.client import SupabaseObjectStorage
from backend.storage.digest import Digest
from standins.storage import route_responses
from standins.storage.access import StoredObject
from tests.integration.storage.conftest import SERVICE_KEY, StorageServer

BUCKET = "voice-renders"


@pytest.fixture
async def database(db_dsn: str) -> AsyncIterator[Database]:
    opened = create_pool(db_dsn, Settings(db_pool_min=1, db_pool_max=4, db_connect_timeout=10).pool_limits)
    await opened.open(wait=True)
    yield Database(opened)
    await opened.close()


@pytest.fixture
async def storage(storage_server: StorageServer) -> AsyncIterator[SupabaseObjectStorage]:
    async with SupabaseObjectStorage(storage_server.storage_url, SERVICE_KEY) as client:
        yield client


def recorded(db: psycopg.Connection[Any], path: str) -> Digest | None:
    row = db.execute(
        "select sha256, size_bytes from voicegate.service_written_objects where bucket_id = %s and name = %s",
        (BUCKET, path),
    ).fetchone()
    return None if row is None else Digest(*row)


def audit_events(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute(
        "select actor, subject_type, subject_id, detail ->> 'name' from voicegate.audit_events"
        " where action = 'storage.object_altered' order by id"
    ).fetchall()


async def write(
    database: Database, storage: SupabaseObjectStorage, path: str, data: bytes, content_type: str = "audio/wav"
) -> None:
    """One write on its own transaction, with the budget its callers give it."""
    async with database.service_transaction(budget=integrity.WRITE_BUDGET_SECONDS) as conn:
        await integrity.write(conn, storage, BUCKET, path, data, content_type=content_type)


async def test_written_read_checked_and_an_altered_file_refused_with_an_audit_event(
    database: Database,
    storage: SupabaseObjectStorage,
    storage_server: StorageServer,
    db: psycopg.Connection[Any],
    users: tuple[uuid.UUID, uuid.UUID],
) -> None:
    alice, _ = users
    path = f"{alice}/renders/{uuid.uuid4()}.wav"
    data = b"RIFF" + bytes(range(256)) * 512
    await write(database, storage, path, data)
    assert recorded(db, path) == Digest.of(data)
    subject = ("synthesis_job", "job-1")
    assert await integrity.read(database, storage, BUCKET, path, actor="test", subject=subject) == data
    assert "token=" in await integrity.signed_url(database, storage, BUCKET, path, 60, actor="test", subject=subject)

    file = storage_server.root / BUCKET / path
    file.write_bytes(data[:-1] + b"\0")
    with pytest.raises(StoredObjectAltered):
        await integrity.read(database, storage, BUCKET, path, actor="reader", subject=subject)
    file.write_bytes(data + b"appended")
    with pytest.raises(StoredObjectAltered):
        await integrity.signed_url(database, storage, BUCKET, path, 60, actor="signer", subject=subject)

    assert audit_events(db) == [("reader", *subject, path), ("signer", *subject, path)]
    (found,) = db.execute(
        "select detail -> 'found' ->> 'size_bytes' from voicegate.audit_events where actor = 'signer'"
    ).fetchone() or (None,)
    assert found == str(len(data) + len(b"appended"))

    # Removed with its record; an object never recorded (from before the records) is read unchecked.
    async with database.service_transaction() as conn:
        assert await integrity.remove(conn, storage, BUCKET, [path]) == [path]
    assert recorded(db, path) is None
    legacy = f"{alice}/renders/legacy.wav"
    await storage.upload(BUCKET, legacy, b"written before the records", "audio/wav")
    assert await integrity.read(database, storage, BUCKET, legacy, actor="test", subject=subject) == (
        b"written before the records"
    )


class Counted:
    """The stand-in's client, counting the reads of whole objects (digests, downloads)."""

    def __init__(self, storage: SupabaseObjectStorage) -> None:
        self.storage = storage
        self.reads = 0

    async def digest(self, bucket: str, path: str) -> Digest:
        self.reads += 1
        return await self.storage.digest(bucket, path)

    async def download(self, bucket: str, path: str) -> bytes:
        self.reads += 1
        return await self.storage.download(bucket, path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)


async def test_a_url_to_a_recorded_object_is_signed_without_reading_it_until_its_stored_version_changes(
    database: Database,
    storage: SupabaseObjectStorage,
    storage_server: StorageServer,
    db: psycopg.Connection[Any],
    users: tuple[uuid.UUID, uuid.UUID],
) -> None:
    """Each URL asks Storage for the object's version (a HEAD); the bytes are hashed once per version: never for
    the version voicegate wrote, once for a version written by anyone else (through Storage or on its disk), and
    not again for a version found altered, which stays refused."""
    alice, _ = users
    path = f"{alice}/renders/{uuid.uuid4()}.wav"
    data = b"RIFF" + bytes(range(256)) * 64
    counted = Counted(storage)
    subject = ("synthesis_job", "job-2")
    await write(database, counted, path, data)  # type: ignore[arg-type]
    urls = {
        await integrity.signed_url(database, counted, BUCKET, path, 600, actor="t", subject=subject) for _ in range(5)
    }  # type: ignore[arg-type]
    assert (counted.reads, len(urls)) == (0, 1)
    # The same URL, signed once and handed out again while most of its time is left.
    response = await storage._http.get(urls.pop())
    assert response.content == data

    # The same bytes stored again through Storage: a new version, read once, then known good.
    await storage.upload(BUCKET, path, data, "audio/wav", upsert=True)
    for _ in range(3):
        await integrity.signed_url(database, counted, BUCKET, path, 600, actor="t", subject=subject)  # type: ignore[arg-type]
    assert counted.reads == 1

    # Other bytes, on the disk behind Storage: read once, refused every time, audited once.
    (storage_server.root / BUCKET / path).write_bytes(data[:-1] + b"\0")
    for _ in range(3):
        with pytest.raises(StoredObjectAltered):
            await integrity.signed_url(database, counted, BUCKET, path, 600, actor="signer", subject=subject)  # type: ignore[arg-type]
    assert counted.reads == 2
    assert audit_events(db) == [("signer", *subject, path)]

    # Written again by voicegate: good again, without a read.
    await write(database, counted, path, data)  # type: ignore[arg-type]
    await integrity.signed_url(database, counted, BUCKET, path, 600, actor="t", subject=subject)  # type: ignore[arg-type]
    assert counted.reads == 2


async def test_a_client_takes_storages_word_on_a_version_for_its_seconds_and_forgets_it_on_its_own_writes(
    database: Database,
    storage_server: StorageServer,
    users: tuple[uuid.UUID, uuid.UUID],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice, _ = users
    path = f"{alice}/renders/{uuid.uuid4()}.wav"
    headed: list[str] = []
    head = route_responses.head

    def counted_head(stored: StoredObject) -> Any:
        headed.append(stored.row["name"])
        return head(stored)

    monkeypatch.setattr(route_responses, "head", counted_head)
    subject = ("synthesis_job", "job-3")
    async with SupabaseObjectStorage(storage_server.storage_url, SERVICE_KEY, version_ttl=60) as storage:
        await write(database, storage, path, b"RIFF first")
        assert headed == [path]  # the version the write stored, recorded as checked
        urls = {await integrity.signed_url(database, storage, BUCKET, path, 600, actor="t", subject=subject)}
        for _ in range(4):
            urls.add(await integrity.signed_url(database, storage, BUCKET, path, 600, actor="t", subject=subject))
        assert (headed, len(urls)) == ([path], 1)
        # Its own upload forgets what Storage said: the next answer is asked for.
        await write(database, storage, path, b"RIFF second")
        url = await integrity.signed_url(database, storage, BUCKET, path, 600, actor="t", subject=subject)
        assert headed == [path] * 2
        assert (await storage._http.get(url)).content == b"RIFF second"


async def test_a_failed_upload_records_nothing(
    database: Database, storage: SupabaseObjectStorage, storage_server: StorageServer, db: psycopg.Connection[Any]
) -> None:
    path = f"{uuid.uuid4()}/renders/refused.ogg"
    with pytest.raises(UnsupportedMediaType):
        await write(database, storage, path, b"OggS", content_type="audio/ogg")  # voice-renders takes WAV and MP3
    assert recorded(db, path) is None
    assert storage_server.row(BUCKET, path) is None


async def test_two_writers_of_one_object_take_turns(
    database: Database, storage: SupabaseObjectStorage, storage_server: StorageServer, db: psycopg.Connection[Any]
) -> None:
    path = f"{uuid.uuid4()}/renders/raced.wav"
    first_written, release_first = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with database.service_transaction(budget=integrity.WRITE_BUDGET_SECONDS) as conn:
            await integrity.write(conn, storage, BUCKET, path, b"first", content_type="audio/wav")
            first_written.set()
            await release_first.wait()

    async def second() -> None:
        await first_written.wait()
        await write(database, storage, path, b"second")

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_written.wait()
    # The second writer waits on the first's record, before its upload, until the first commits.
    deadline = time.monotonic() + 20
    while not db.execute(
        "select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like %s",
        ("%service_written_objects%",),
    ).fetchone():
        assert time.monotonic() < deadline, "the second writer never waited"
        await asyncio.sleep(0.02)
    assert (storage_server.root / BUCKET / path).read_bytes() == b"first"
    release_first.set()
    await asyncio.gather(*tasks)

    assert (storage_server.root / BUCKET / path).read_bytes() == b"second"
    assert recorded(db, path) == Digest.of(b"second")


async def test_bytes_of_a_write_announced_and_under_way_are_read_as_voicegates_and_no_others(
    database: Database, storage: SupabaseObjectStorage, storage_server: StorageServer, db: psycopg.Connection[Any]
) -> None:
    path = f"{uuid.uuid4()}/renders/announced.wav"
    subject = ("synthesis_job", "job-1")
    first = await integrity.announce(database, BUCKET, path, Digest.of(b"first"))
    # Announced and not yet recorded: an object with no record is checked against what was announced for it.
    await storage.upload(BUCKET, path, b"first", "audio/wav", upsert=True)
    assert await integrity.read(database, storage, BUCKET, path, actor="test", subject=subject) == b"first"
    db.execute(
        "insert into voicegate.service_written_objects (bucket_id, name, sha256, size_bytes) values (%s, %s, %s, %s)",
        (BUCKET, path, Digest.of(b"first").sha256, 5),
    )
    db.execute("delete from voicegate.service_object_writes where id = %s", (first,))
    # Recorded, and a second write under way: its bytes land before its record names them.
    await integrity.announce(database, BUCKET, path, Digest.of(b"second"))
    await storage.upload(BUCKET, path, b"second", "audio/wav", upsert=True)
    assert await integrity.read(database, storage, BUCKET, path, actor="test", subject=subject) == b"second"
    assert "token=" in await integrity.signed_url(database, storage, BUCKET, path, 60, actor="test", subject=subject)
    assert audit_events(db) == []

    (storage_server.root / BUCKET / path).write_bytes(b"third")
    with pytest.raises(StoredObjectAltered):
        await integrity.read(database, storage, BUCKET, path, actor="reader", subject=subject)
    assert audit_events(db) == [("reader", *subject, path)]
    (writing,) = db.execute(
        "select detail -> 'writing' -> 0 ->> 'sha256' from voicegate.audit_events where actor = 'reader'"
    ).fetchone() or (None,)
    assert writing == Digest.of(b"second").sha256


async def test_writes_announced_together_each_get_their_own_announcement(
    db: psycopg.Connection[Any], database: Database
) -> None:
    # Announced in one turn, in one statement (`Database.grouped`): each writer's id names its own write, in the
    # order the writers came, two writers of one path included.
    paths = ["a/one.wav", "a/two.wav", "a/one.wav", "a/three.wav"]
    digests = [Digest.of(bytes([n]) * (n + 1)) for n in range(len(paths))]
    ids = await asyncio.gather(
        *(integrity.announce(database, BUCKET, p, d) for p, d in zip(paths, digests, strict=True))
    )
    assert len(set(ids)) == len(paths)
    rows = db.execute(
        "select id, name, sha256, size_bytes from voicegate.service_object_writes where id = any(%s)", (ids,)
    ).fetchall()
    announced = {row[0]: (row[1], Digest(row[2], row[3])) for row in rows}
    assert [announced[write] for write in ids] == list(zip(paths, digests, strict=True))
    assert await integrity.announce(database, BUCKET, "a/four.wav", digests[0]) > max(ids)  # alone, the same way
