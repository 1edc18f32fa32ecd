"""What every part of the Storage stand-in's service shares: the caller's transaction, in which their role and
claims decide through RLS what they may do, the bucket's limits, an object's row and where its bytes are, and the
lock each write of an object takes.

Files are users' voice recordings: each is 0600 in directories 0700, whatever the umask.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from psycopg import errors as pg_errors

from backend.db.connection import Connection
from backend.db.queries import load_queries
from backend.db.units import Database
from standins.private_files import make_private_dirs
from standins.storage import errors

Claims = Mapping[str, Any]

_Q = load_queries(Path(__file__).with_suffix(".sql"))

#: Where bodies stream to before they are moved into place (a name no bucket can have).
UPLOADS_DIR = ".uploads"
# Storage runs a request without a user as `anon` (src/internal/database/pg-connection.ts), in a transaction
# that says so as PostgREST does.
_AS_ANON = "select set_config('role', 'anon', true), set_config('request.jwt.claims', %(claims)s, true)"


@dataclass(frozen=True)
class Bucket:
    """The limits a bucket row sets."""

    file_size_limit: int | None
    allowed_mime_types: list[str] | None


@dataclass(frozen=True)
class StoredObject:
    """An object row and where its bytes are."""

    row: dict[str, Any]
    file: Path

    @property
    def metadata(self) -> dict[str, Any]:
        """Storage's system metadata (`eTag`, `size`, `mimetype`, ...)."""
        value = self.row.get("metadata") or {}
        return value if isinstance(value, dict) else {}


class StorageAccess:
    """One database and one directory, reached as a caller or as the service."""

    def __init__(self, db: Database, root_dir: Path) -> None:
        self.db = db
        self.root = root_dir

    def file(self, bucket: str, path: str) -> Path:
        """Where the object's bytes are."""
        return self.root / bucket / path

    @asynccontextmanager
    async def as_caller(self, claims: Claims) -> AsyncIterator[Connection]:
        """A transaction as the caller's role, turning RLS refusals into Storage's AccessDenied."""
        role = claims.get("role")
        try:
            if role == "service_role":
                async with self.db.service_transaction() as conn:
                    yield conn
            elif role == "authenticated" and isinstance(claims.get("sub"), str):
                async with self.db.user_transaction(claims) as conn:
                    yield conn
            elif role == "anon":
                # Down from the service to `anon` before any statement runs: RLS then treats the request as
                # Storage treats a request that carries only the anon key (voicegate's buckets give it nothing).
                async with self.db.service_transaction() as conn:
                    await conn.execute(_AS_ANON, {"claims": json.dumps({**claims, "role": "anon"})})
                    yield conn
            else:
                raise errors.access_denied("Access denied")
        except pg_errors.InsufficientPrivilege as exc:
            raise errors.denied_by_database(exc) from exc

    async def bucket(self, bucket: str) -> Bucket:
        """The bucket's limits, else NoSuchBucket."""
        # Read as the service: bucket limits are not secret, and users have no policy on storage.buckets.
        async with self.db.service_transaction() as conn:
            cur = await conn.execute(
                "select file_size_limit, allowed_mime_types from storage.buckets where id = %s", (bucket,)
            )
            row = await cur.fetchone()
        if row is None:
            raise errors.no_such_bucket()
        return Bucket(row["file_size_limit"], row["allowed_mime_types"])

    async def find(self, conn: Connection, bucket: str, path: str) -> StoredObject:
        """The object as `conn` sees it, else NoSuchKey."""
        cur = await conn.execute(_Q["find_object"], {"bucket": bucket, "name": path})
        row = await cur.fetchone()
        if row is None:
            raise errors.no_such_key()
        return StoredObject(row, self.file(bucket, path))

    async def temp_path(self) -> Path:
        """A fresh name under the uploads directory, on the objects' filesystem (renames are atomic)."""
        temp_dir = self.root / UPLOADS_DIR
        await anyio.to_thread.run_sync(make_private_dirs, temp_dir)
        return temp_dir / uuid.uuid4().hex


def owner(claims: Claims) -> str | None:
    """Who owns what the caller writes: an authenticated user, else nobody."""
    # The service key has no `sub`: its objects have no owner, as on Supabase.
    sub = claims.get("sub")
    return sub if claims.get("role") == "authenticated" and isinstance(sub, str) else None


async def lock_object(conn: Connection, bucket: str, path: str) -> None:
    """Hold the object's lock until `conn`'s transaction ends. A write takes it before it moves a file
    into place and commits the row; the orphan sweep (standins.storage.orphan_files) takes it before
    removing a file it found without a row, so it never removes one whose row is about to commit."""
    await conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{bucket}/{path}",))


async def unlink(path: Path) -> None:
    """Remove the file; one already gone is not an error."""
    with suppress(FileNotFoundError):
        await anyio.Path(path).unlink()
