"""Objects in voicegate's buckets that no row claims, found and removed once past a grace period.

An object is claimed, and so never touched here, when it is a sample's original or processed copy
(recorded, or written beside its original before it is recorded), the upload of a draft voice awaiting
its finalize, a spoken consent's recording (its evidence, until purged), an attempt's preview, or a
synthesis job's audio. Anything else in voice-samples,
voice-previews and voice-renders that nobody wrote for the grace period is an orphan: a sample whose
rows never committed (the database failed between the upload and the commit, and the removal that
should have followed failed too), an object whose removal failed, a preview or render whose row is
gone, or a file a client put in its own folder that voicegate never recorded (it would otherwise
outlive every retention rule). The grace period keeps uploads in flight, which are written before
their rows, out of it.

This reads `storage.objects` as the service and removes through the Storage API, so it works the same
against Supabase and the embedded stand-in. A file the stand-in holds with no `storage.objects` row at
all is another kind of orphan, found by standins.storage.orphan_files.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NotRequired, Protocol, TypedDict, TypeVar, Unpack

import msgspec
import psycopg

from backend.db.audit import record_audit
from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import TransactionSource, transaction_from
from backend.errors import ServiceUnavailable, VoicegateError
from backend.storage import integrity, paths

if TYPE_CHECKING:
    from backend.storage.client import ObjectRemover

_Q = load_queries(Path(__file__).with_suffix(".sql"))
BUCKETS = (paths.SAMPLES, paths.PREVIEWS, paths.RENDERS)
"""voicegate's own buckets, the only ones swept: those of samples.service, clone.preview_step and
synthesis.step, spelled again here so an operator script need not load the worker steps (a test checks
that they agree)."""
AUDIT_ACTION = "storage.orphan_remove"


class OrphanObject(msgspec.Struct, kw_only=True):
    """One object no row claims. `outcome`: `would_remove` (dry run), `removed`, `skipped` (claimed or
    rewritten meanwhile, or already gone), or `error` (nothing changed; `error` says why)."""

    id: uuid.UUID
    bucket_id: str
    name: str
    size_bytes: int | None
    written_at: datetime
    outcome: str
    error: str | None = None


class OrphanBatch(msgspec.Struct, kw_only=True):
    """One batch, and the cursor for the next (None after the last)."""

    objects: list[OrphanObject]
    next_after: tuple[str, str] | None


def _params(written_before: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "buckets": list(BUCKETS),
        "samples_bucket": paths.SAMPLES,
        "previews_bucket": paths.PREVIEWS,
        "renders_bucket": paths.RENDERS,
        "written_before": written_before,
        "id": None,
        "after_bucket": None,
        "after_name": None,
        "limit": 1,
    } | extra


class Orphan(Protocol):
    """What a sweep found: `outcome` is `would_remove` until it is `removed`, `skipped` or `error` (`error` says
    why)."""

    outcome: str
    error: str | None


OrphanT = TypeVar("OrphanT", bound=Orphan)


class Sweep(TypedDict):
    """One batch of a sweep: up to `limit` orphans last written before `written_before`, after the cursor `after`;
    with `apply`, each removed, with an audit event by `actor` carrying `detail`."""

    written_before: datetime
    limit: int
    apply: bool
    actor: str
    after: NotRequired[tuple[str, str] | None]
    detail: NotRequired[dict[str, Any] | None]


class OrphanPlace(Protocol[OrphanT]):
    """Where orphans lie (`StoredObjects`, and the Storage stand-in's files), as a sweep finds and removes them."""

    @property
    def outage(self) -> tuple[type[Exception], ...]:
        """What a removal raises when Storage or the database is down: every other removal would fail the same way."""
        ...

    @property
    def failure(self) -> tuple[type[Exception], ...]:
        """What a removal raises when it fails for that one orphan, which is reported as `error` and left."""
        ...

    async def find(
        self, source: TransactionSource, *, written_before: datetime, limit: int, after: tuple[str, str] | None
    ) -> list[OrphanT]:
        """Up to `limit` orphans last written before `written_before`, in cursor order after `after`."""
        ...

    async def remove(
        self,
        source: TransactionSource,
        orphan: OrphanT,
        *,
        written_before: datetime,
        actor: str,
        detail: dict[str, Any] | None,
    ) -> bool:
        """Remove `orphan` if it still is one, with its audit event; False when it is not one any more."""
        ...


async def sweep_orphans(
    source: TransactionSource, place: OrphanPlace[OrphanT], **sweep: Unpack[Sweep]
) -> list[OrphanT]:
    """Look at one batch (`Sweep`) of the orphans in `place`; with `apply`, remove each. A removal that fails is
    reported as `error` and the orphan left; an outage stops the sweep. A full batch may have more after its last."""
    written_before, actor, detail = sweep["written_before"], sweep["actor"], sweep.get("detail")
    found = await place.find(source, written_before=written_before, limit=sweep["limit"], after=sweep.get("after"))
    if not sweep["apply"]:
        return found
    for orphan in found:
        try:
            removed = await place.remove(source, orphan, written_before=written_before, actor=actor, detail=detail)
        except place.outage:
            raise  # every other removal would fail the same way
        except place.failure as exc:
            orphan.outcome, orphan.error = "error", f"{type(exc).__name__}: {exc}"[:300]
            continue
        orphan.outcome = "removed" if removed else "skipped"
    return found


@dataclass(frozen=True)
class StoredObjects:
    """voicegate's buckets, read from `storage.objects` as the service and removed through `storage` (None for a
    dry run)."""

    storage: ObjectRemover | None
    outage: ClassVar[tuple[type[Exception], ...]] = (ServiceUnavailable, psycopg.OperationalError)
    failure: ClassVar[tuple[type[Exception], ...]] = (VoicegateError, psycopg.Error)

    async def find(
        self, source: TransactionSource, *, written_before: datetime, limit: int, after: tuple[str, str] | None
    ) -> list[OrphanObject]:
        """Up to `limit` objects no row claims, last written before `written_before`, after `(bucket, name)`."""
        after_bucket, after_name = after or (None, None)
        params = _params(written_before, limit=limit, after_bucket=after_bucket, after_name=after_name)
        async with transaction_from(source) as conn:
            rows = await fetch_all(conn, _Q["orphan_objects"], params)
        return [OrphanObject(**row, outcome="would_remove") for row in rows]

    async def remove(
        self,
        source: TransactionSource,
        orphan: OrphanObject,
        *,
        written_before: datetime,
        actor: str,
        detail: dict[str, Any] | None,
    ) -> bool:
        """`remove_orphan_object`."""
        if self.storage is None:
            raise ValueError("removing orphans needs a storage to remove them from")
        return await remove_orphan_object(
            source, self.storage, orphan, written_before=written_before, actor=actor, detail=detail
        )


async def sweep_orphan_objects(
    source: TransactionSource, storage: ObjectRemover | None, **sweep: Unpack[Sweep]
) -> OrphanBatch:
    """`sweep_orphans` over voicegate's buckets (`storage` may be None for a dry run), with the cursor of the next
    batch: continue with `next_after`."""
    found = await sweep_orphans(source, StoredObjects(storage), **sweep)
    next_after = (found[-1].bucket_id, found[-1].name) if len(found) == sweep["limit"] else None
    return OrphanBatch(objects=found, next_after=next_after)


async def remove_orphan_object(
    source: TransactionSource,
    storage: ObjectRemover,
    orphan: OrphanObject,
    *,
    written_before: datetime,
    actor: str,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Remove the object if it still is an orphan, with an audit event (`storage.orphan_remove`) in the
    same transaction; False when it is not one any more, or was gone already. Storage's own row is not
    locked here: Storage's delete must be able to take it."""
    async with transaction_from(source) as conn:
        still = await fetch_optional(conn, _Q["orphan_objects"], _params(written_before, id=orphan.id))
        if still is None or not await integrity.remove(conn, storage, orphan.bucket_id, [orphan.name]):
            return False
        audit = {
            **(detail or {}),
            "bucket_id": orphan.bucket_id,
            "name": orphan.name,
            "size_bytes": orphan.size_bytes,
            "written_at": orphan.written_at.isoformat(),
        }
        await record_audit(conn, actor, AUDIT_ACTION, "storage_object", orphan.id, detail=audit)
    return True
