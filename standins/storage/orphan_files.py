"""Files the Storage stand-in holds that no `storage.objects` row describes, found and removed once past
a grace period (embedded mode only: Supabase Storage keeps its own files).

The stand-in moves an uploaded file into place inside the transaction that writes its row, so when the
database fails before that commit (a crash mid-upload) the file stays behind with no row: nothing
serves it and nothing would ever remove it. A process that dies mid-upload leaves its temporary file
in `.uploads`. Both are removed once nobody wrote them for the grace period. A stored file is removed
under the lock each write of that object takes (`access.lock_object`), after looking for its row once
more, so a file whose row is about to commit is never removed.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import psycopg

from backend.db.audit import record_audit
from backend.db.execute import fetch_all
from backend.db.queries import load_queries
from backend.db.units import TransactionSource, transaction_from
from backend.errors import DatabaseUnavailable
from standins.storage.access import UPLOADS_DIR, lock_object

_Q = load_queries(Path(__file__).with_suffix(".sql"))
AUDIT_ACTION = "storage.orphan_file_remove"
# Names looked up per query.
_LOOKUP_BATCH = 500


class OrphanFile(msgspec.Struct, kw_only=True):
    """One file with no object row. `bucket_id` is None for a temporary upload (`name` is then its
    name in `.uploads`). `outcome`: `would_remove` (dry run), `removed`, `skipped` (its row appeared,
    it was written again, or it is gone), or `error`."""

    bucket_id: str | None
    name: str
    size_bytes: int
    written_at: datetime
    outcome: str
    error: str | None = None

    def path(self, root: Path) -> Path:
        """Where the file is under the stand-in's root."""
        return root / (self.bucket_id or UPLOADS_DIR) / self.name

    @property
    def key(self) -> tuple[str, str]:
        """Its place in the order files are looked at (temporary uploads first); a cursor."""
        return self.bucket_id or "", self.name


def _old_files(root: Path, written_before: float) -> list[OrphanFile]:
    """Every regular file under `root` last written before `written_before` (a timestamp), by bucket."""
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            try:
                relative = path.relative_to(root).as_posix()
                relative.encode()  # a name no key could have (not UTF-8) is not the stand-in's
                stat = path.lstat()
            except (OSError, UnicodeEncodeError):
                continue
            if not path.is_file() or path.is_symlink() or stat.st_mtime >= written_before:
                continue
            bucket, _, key = relative.partition("/")
            if not key:
                continue  # a stray file at the root belongs to no bucket
            found.append(
                OrphanFile(
                    bucket_id=None if bucket == UPLOADS_DIR else bucket,
                    name=key,
                    size_bytes=stat.st_size,
                    written_at=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
                    outcome="would_remove",
                )
            )
    return found


async def find_orphan_files(
    source: TransactionSource,
    root: Path,
    *,
    written_before: datetime,
    limit: int,
    after: tuple[str, str] | None = None,
) -> list[OrphanFile]:
    """Up to `limit` files under `root` with no object row (or temporary uploads) last written before
    `written_before`, in `OrphanFile.key` order after the cursor `after`."""
    found = await asyncio.to_thread(_old_files, root, written_before.timestamp())
    candidates = sorted((f for f in found if after is None or f.key > after), key=lambda f: f.key)
    by_bucket: dict[str, list[OrphanFile]] = defaultdict(list)
    orphans = [file for file in candidates if file.bucket_id is None]
    for file in candidates:
        if file.bucket_id is not None:
            by_bucket[file.bucket_id].append(file)
    async with transaction_from(source) as conn:
        for bucket, files in by_bucket.items():
            for start in range(0, len(files), _LOOKUP_BATCH):
                chunk = files[start : start + _LOOKUP_BATCH]
                params = {"bucket": bucket, "names": [file.name for file in chunk]}
                stored = {row["name"] for row in await fetch_all(conn, _Q["stored_names"], params)}
                orphans.extend(file for file in chunk if file.name not in stored)
    return sorted(orphans, key=lambda f: f.key)[:limit]


@dataclass(frozen=True)
class StandInFiles:
    """The files the Storage stand-in holds under `root`, as `backend.storage.orphans.sweep_orphans` sweeps them:
    continue from the last one's `key` while a batch is full."""

    root: Path
    outage: ClassVar[tuple[type[Exception], ...]] = (DatabaseUnavailable, psycopg.OperationalError)
    failure: ClassVar[tuple[type[Exception], ...]] = (OSError, psycopg.Error)

    async def find(
        self, source: TransactionSource, *, written_before: datetime, limit: int, after: tuple[str, str] | None
    ) -> list[OrphanFile]:
        """`find_orphan_files`."""
        return await find_orphan_files(source, self.root, written_before=written_before, limit=limit, after=after)

    async def remove(
        self,
        source: TransactionSource,
        orphan: OrphanFile,
        *,
        written_before: datetime,
        actor: str,
        detail: dict[str, Any] | None,
    ) -> bool:
        """`remove_orphan_file`."""
        return await remove_orphan_file(
            source, self.root, orphan, written_before=written_before, actor=actor, detail=detail
        )


async def remove_orphan_file(
    source: TransactionSource,
    root: Path,
    file: OrphanFile,
    *,
    written_before: datetime,
    actor: str,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Remove the file if it still has no row and was not written since, with an audit event
    (`storage.orphan_file_remove`); False when that no longer holds."""
    path = file.path(root)
    async with transaction_from(source) as conn:
        if file.bucket_id is not None:
            await lock_object(conn, file.bucket_id, file.name)
            params = {"bucket": file.bucket_id, "names": [file.name]}
            if await fetch_all(conn, _Q["stored_names"], params):
                return False
        try:
            written = path.lstat().st_mtime
        except FileNotFoundError:
            return False
        if written >= written_before.timestamp():
            return False
        audit = {**(detail or {}), "bucket_id": file.bucket_id, "name": file.name, "size_bytes": file.size_bytes}
        subject = f"{file.bucket_id or UPLOADS_DIR}/{file.name}"
        subject_id = subject if len(subject) <= 200 else f"{subject[:197]}..."
        await record_audit(conn, actor, AUDIT_ACTION, "storage_file", subject_id, detail=audit)
        # Inside the transaction: if the file cannot go, the audit event goes with it.
        await asyncio.to_thread(path.unlink, missing_ok=True)
    return True
