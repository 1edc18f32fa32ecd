"""Files voicegate writes and later reads or serves (processed samples, renders, previews, voice manifests):
stored with the SHA-256 and size of their bytes recorded in Postgres, and checked against that record
whenever voicegate reads one back or hands out a URL to it.

Users cannot write these files (in voicegate's buckets the storage policies give them SELECT only), but
the bytes live outside Postgres, where whoever reaches the disk or the bucket can change them. A file
that no longer matches its record is never used or served: the reader gets `StoredObjectAltered`, and
an audit event (`storage.object_altered`) says what was recorded and what was found.

`write` runs on the caller's transaction, the one that commits the row pointing at the object (a job's
result, a sample's cleaned copy, an attempt's preview), after that row was locked
and updated: it records the digest (upserting the record locks it, so two writers of one object take
turns), then uploads, and both commit with the row. A failed upload rolls the record and the row back,
and a writer fenced out by the row writes nothing, so a record always describes its object's bytes,
except after a commit that fails once its upload succeeded: the object then reads as altered until it
is written again (refused, never the other way round).

A writer that holds no lock through its upload (a voice's manifest: backend.clone.manifest) `announce`s
the bytes first, in a statement of its own, then uploads, then records them and ends its announcement once
it knows they are the ones to keep. Until then the object may hold bytes its record does not name, so a
reader takes an object that matches its record or any write announced for it as voicegate's: a file
written correctly is never reported altered, and a file nobody announced still is.

`read` hashes the bytes it reads. `signed_url` reads none: it asks Storage for the object's stored version (a
HEAD, answered from the backend: an ETag, a size and a time that change whenever the bytes do, on disk or in the
bucket) and hashes the object only when that version is not the one last found to match, once per version.

Objects written before the record existed have none and are read and served unchecked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, LiteralString

from backend.db.audit import record_audit
from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_one
from backend.db.queries import load_queries
from backend.db.units import Database
from backend.errors import NotFound, StorageUnavailable, StoredObjectAltered
from backend.storage.digest import Digest
from backend.storage.recent import RecentAnswers

if TYPE_CHECKING:
    # Only the callers hold a client: an operator script that removes nothing need not load one.
    from backend.storage.client import ObjectRemover, ObjectStorage

_Q = load_queries(Path(__file__).with_suffix(".sql"))
AUDIT_ACTION = "storage.object_altered"
#: The budget of a transaction that writes an object. It waits on Storage while the upload runs, and the
#: server ends a transaction idle for BUSY_WAIT_DEADLINES times its budget (a minute here): enough for
#: the largest object a bucket takes, over a slow link.
WRITE_BUDGET_SECONDS = 12.0
#: How long this process remembers what a stored version of an object was found to hold. A version's bytes never
#: change (new bytes are a new version), so this only bounds the memory's age.
VERDICT_SECONDS = 3600.0
_VERDICTS = RecentAnswers[tuple[str, str, str], bool]()

Subject = tuple[str, object]
"""What an audit event is about: the row the object belongs to, as (subject type, id)."""


async def write(
    conn: Connection, storage: ObjectStorage, bucket: str, path: str, data: bytes, *, content_type: str
) -> Digest:
    """Record the digest of `data` and store it at `bucket/path` (replacing what was there), on `conn`'s
    transaction, which must already hold the row that points at the object."""
    digest = Digest.of(data)
    params = {"bucket": bucket, "name": path, "sha256": digest.sha256, "size": digest.size}
    written_at = (await fetch_one(conn, _Q["record"], params))["written_at"]
    await storage.upload(bucket, path, data, content_type, upsert=True)
    # The version these bytes were stored as, so a URL signed before the next write need not read them back; when
    # Storage does not say, the first URL reads them once instead.
    try:
        version = await storage.stored_version(bucket, path)
    except StorageUnavailable:
        version = None
    if version is not None:
        params = {"bucket": bucket, "name": path, "written_at": written_at, "version": version}
        await conn.execute(_Q["checked"], params)
    return digest


async def announce(db: Database, bucket: str, path: str, digest: Digest) -> int:
    """Say, before uploading them without a lock, that the bytes of `digest` may be at `bucket/path` from now
    on; the write's id, for the writer to end once it has recorded or removed the object (see the module
    docstring). A write never ended is finished by the worker's sweep."""
    # Committed before the upload, with the announcements other writers make at the same moment.
    params = {"bucket": bucket, "name": path, "sha256": digest.sha256, "size": digest.size}
    [rows] = await db.grouped((_Q["announce"],), params)
    write_id: int = rows[0]["id"]
    return write_id


async def remove(conn: Connection, storage: ObjectRemover, bucket: str, paths: list[str]) -> list[str]:
    """Forget the objects' records and delete them, on `conn`'s transaction; returns the names Storage
    deleted (a missing object is no error)."""
    await conn.execute(_Q["forget"], {"bucket": bucket, "names": paths})
    return await storage.remove(bucket, paths)


async def read(db: Database, storage: ObjectStorage, bucket: str, path: str, *, actor: str, subject: Subject) -> bytes:
    """The object's bytes, checked against its record; raises StoredObjectAltered (after recording an
    audit event for `actor` about `subject`) when they differ."""
    known = await _known(db, bucket, path)
    data = await storage.download(bucket, path)
    if known is not None:
        await _check(db, bucket, path, known, Digest.of(data), actor=actor, subject=subject)
    return data


async def signed_url(
    db: Database, storage: ObjectStorage, bucket: str, path: str, expires_in: int, *, actor: str, subject: Subject
) -> str:
    """A URL that downloads the object for `expires_in` seconds, once its stored version is known to hold the bytes
    recorded (see the module docstring); raises StoredObjectAltered like `read`."""
    version = await storage.stored_version(bucket, path)
    if version is None:
        raise NotFound("Object not found")
    verdict = (bucket, path, version)
    if _VERDICTS.holds(verdict):
        matches = _VERDICTS.get(verdict)
    else:
        matches = await _version_matches(db, storage, bucket, path, version, actor=actor, subject=subject)
        _VERDICTS.put(verdict, matches, VERDICT_SECONDS)
    if not matches:
        raise _altered(bucket, path)
    return await storage.create_signed_url(bucket, path, expires_in, version=version)


async def _version_matches(
    db: Database, storage: ObjectStorage, bucket: str, path: str, version: str, *, actor: str, subject: Subject
) -> bool:
    """Whether the object's stored `version` holds bytes voicegate recorded (or it has no record): known from the
    record when that version was checked before, else found by hashing it, once, and remembered on the record."""
    known = await _known(db, bucket, path)
    if known is None or version == known.checked:
        return True
    if version == known.altered:
        return False
    found = await storage.digest(bucket, path)
    # What the version held when it was hashed: a version that changes meanwhile is hashed at the next URL.
    params = {"bucket": bucket, "name": path, "written_at": known.written_at, "version": version}
    try:
        await _check(db, bucket, path, known, found, actor=actor, subject=subject)
    except StoredObjectAltered:
        await _remember(db, _Q["altered"], params, known)
        return False
    await _remember(db, _Q["checked"], params, known)
    return True


@dataclass(frozen=True)
class _Known:
    """What voicegate knows an object's bytes may be: its record, and the writes announced for it; with the record,
    when it was written and the stored versions last found to match it (`checked`) and not to (`altered`)."""

    recorded: Digest | None
    writing: tuple[Digest, ...]
    written_at: datetime | None = None
    checked: str | None = None
    altered: str | None = None


async def _known(db: Database, bucket: str, path: str) -> _Known | None:
    """None for an object voicegate has neither recorded nor announced (written before the record existed)."""
    async with db.service_statement() as conn:
        rows = await fetch_all(conn, _Q["recorded"], {"bucket": bucket, "name": path})
    if not rows:
        return None
    writing = tuple(Digest(row["sha256"], row["size_bytes"]) for row in rows if not row["written"])
    for row in rows:
        if row["written"]:
            recorded = Digest(row["sha256"], row["size_bytes"])
            return _Known(recorded, writing, row["written_at"], row["checked_version"], row["altered_version"])
    return _Known(None, writing)


async def _remember(db: Database, query: LiteralString, params: Mapping[str, object], known: _Known) -> None:
    """Record what a version was found to hold; a version of an object with only announced writes is not kept
    (there is no record to keep it on, and the writer's record comes soon)."""
    if known.written_at is not None:
        async with db.service_statement() as conn:
            await conn.execute(query, params)


def _altered(bucket: str, path: str) -> StoredObjectAltered:
    return StoredObjectAltered(f"The stored file {bucket}/{path} has changed since voicegate wrote it; it is not used.")


async def _check(
    db: Database, bucket: str, path: str, known: _Known, found: Digest, *, actor: str, subject: Subject
) -> None:
    if found == known.recorded or found in known.writing:
        return
    recorded = known.recorded
    detail: dict[str, object] = {
        "bucket_id": bucket,
        "name": path,
        "recorded": None if recorded is None else {"sha256": recorded.sha256, "size_bytes": recorded.size},
        "found": {"sha256": found.sha256, "size_bytes": found.size},
    }
    if known.writing:
        detail["writing"] = [{"sha256": d.sha256, "size_bytes": d.size} for d in known.writing]
    subject_type, subject_id = subject
    async with db.service_transaction() as conn:
        await record_audit(conn, actor, AUDIT_ACTION, subject_type, subject_id, detail=detail)
    raise _altered(bucket, path)
