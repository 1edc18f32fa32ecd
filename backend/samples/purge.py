"""Removing samples: on their owner's request (`backend.samples.service`), and when their retention ends
(`purge_expired_samples`, which the worker's maintenance sweep and `voicegate ops purge-expired-samples`
run; samples expire `VOICEGATE_SAMPLE_RETENTION_DAYS` after upload: docs/concepts.md#what-runs).

A sample its owner consented to keep (`keep_sample`: so the voice can be enrolled again elsewhere) is
trimmed instead when its retention ends, while its voice exists: the original goes, the cleaned copy
stays. Deleting the voice, or withdrawing that consent, purges it at once.

The order keeps Storage and the database in step. Each sample is purged in its own transaction: its
row is locked and deleted first (uncommitted, so a row that cannot be deleted is found before any
object is touched), then the original and processed objects are removed from Storage, then the audit
event is written and the transaction commits. A failed removal rolls the row back; a failed commit
leaves a row whose objects are already gone, which the next run purges again (removing a missing
object is not an error). So there is never an object without its row, and a row without its objects
only until the next run.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from psycopg import errors as pg_errors

from backend.db.audit import record_audit
from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import TransactionSource, transaction_from
from backend.errors import Conflict, ServiceUnavailable, VoicegateError
from backend.storage import integrity, paths
from backend.storage.client import ObjectRemover

_Q = load_queries(Path(__file__).with_suffix(".sql"))


class PurgedSample(msgspec.Struct, kw_only=True):
    """One sample the purge looked at.

    `outcome`: `would_purge` (dry run), `purged`, `would_trim` / `trimmed` (a kept sample: its original
    removed, its cleaned copy kept), `skipped` (gone, locked by another purge, or no longer expired), or
    `error` (nothing changed; `error` says why).
    """

    sample_id: uuid.UUID
    owner_id: uuid.UUID
    bucket_id: str
    object_path: str
    processed_object_path: str | None
    expires_at: datetime
    outcome: str
    keep: bool = False
    removed: list[str] = msgspec.field(default_factory=list)
    error: str | None = None


class PurgeBatch(msgspec.Struct, kw_only=True):
    """One batch: every sample looked at, and the cursor for the next batch (None after the last)."""

    samples: list[PurgedSample]
    next_after: tuple[datetime, uuid.UUID] | None


def purged_view(row: dict[str, Any], outcome: str) -> PurgedSample:
    """A sample row as a purge reports it."""
    return msgspec.convert({**row, "outcome": outcome}, PurgedSample)


async def purge_sample(
    target: TransactionSource,
    storage: ObjectRemover,
    sample_id: uuid.UUID,
    *,
    actor: str,
    reason: str = "deleted",
    expired_before: datetime | None = None,
    detail: dict[str, Any] | None = None,
    wait: bool = False,
) -> PurgedSample | None:
    """Purge one sample with its objects and an audit event (`sample.purge`), all or nothing.

    With `expired_before`, only a sample that expired by then is purged. Returns None when there is
    no such sample or, unless `wait`, another transaction holds it; with `wait` it waits half a second
    for that transaction, then raises Conflict. Raises what the deletion or Storage raised, with
    nothing changed. For `DELETE /api/v1/voice-samples/{id}` (waiting) and the retention purge alike.
    """
    async with transaction_from(target) as conn:
        if wait:
            await conn.execute(_Q["brief_lock_wait"])
            try:
                row = await fetch_optional(conn, _Q["delete_sample_waiting"], {"id": sample_id})
            except pg_errors.LockNotAvailable as exc:
                raise Conflict("The sample is being processed; try again in a moment.") from exc
        else:
            row = await fetch_optional(conn, _Q["delete_sample"], {"id": sample_id, "expired_before": expired_before})
        if row is None:
            return None
        purged = purged_view(row, "purged")
        processed = [row["processed_object_path"]] if row["processed_object_path"] else []
        names = list(dict.fromkeys([row["object_path"], *processed, paths.processed(row["object_path"])]))
        purged.removed = await integrity.remove(conn, storage, row["bucket_id"], names)
        audit = {
            **(detail or {}),
            "reason": reason,
            "owner_id": str(row["owner_id"]),
            "bucket_id": row["bucket_id"],
            "objects": names,
            "removed": purged.removed,
            "expires_at": row["expires_at"].isoformat(),
        }
        await record_audit(conn, actor, "sample.purge", "voice_sample", sample_id, detail=audit)
    return purged


async def trim_sample(
    target: TransactionSource,
    storage: ObjectRemover,
    sample_id: uuid.UUID,
    *,
    actor: str,
    expired_before: datetime,
    detail: dict[str, Any] | None = None,
) -> PurgedSample | None:
    """Remove a kept sample's original once its retention ended, keeping the row and its cleaned copy
    for re-enrolment; with an audit event (`sample.trim`), all or nothing. None when the sample is no
    longer one to trim (gone, locked, not expired, or no longer kept)."""
    async with transaction_from(target) as conn:
        row = await fetch_optional(conn, _Q["trim_sample"], {"id": sample_id, "expired_before": expired_before})
        if row is None:
            return None
        trimmed = purged_view(row, "trimmed")
        trimmed.keep = True
        trimmed.removed = await storage.remove(row["bucket_id"], [row["object_path"]])
        audit = {
            **(detail or {}),
            "reason": "expired, kept for re-enrolment",
            "owner_id": str(row["owner_id"]),
            "consent_id": str(row["consent_id"]),
            "objects": [row["object_path"]],
            "removed": trimmed.removed,
            "kept": row["processed_object_path"],
        }
        await record_audit(conn, actor, "sample.trim", "voice_sample", sample_id, detail=audit)
    return trimmed


async def purge_kept_samples(
    target: TransactionSource, storage: ObjectRemover, voice_id: uuid.UUID, *, actor: str
) -> int:
    """Purge every sample of `voice_id` kept for re-enrolment (its voice was deleted); how many went."""
    async with transaction_from(target) as conn:
        rows = await fetch_all(conn, _Q["kept_samples_of_voice"], {"voice_id": voice_id})
    purged = 0
    for row in rows:
        if await purge_sample(target, storage, row["id"], actor=actor, reason="voice_deleted") is not None:
            purged += 1
    return purged


async def purge_expired_samples(
    target: TransactionSource,
    storage: ObjectRemover | None,
    *,
    now: datetime | None = None,
    limit: int,
    apply: bool,
    actor: str,
    after: tuple[datetime, uuid.UUID] | None = None,
    detail: dict[str, Any] | None = None,
) -> PurgeBatch:
    """Look at one batch of up to `limit` samples expired by `now` (default: the current time) after
    the cursor `after`, oldest expiry first; with `apply`, purge each (see `purge_sample`), or trim it
    when it is kept for re-enrolment (see `trim_sample`).

    Each sample gets its own transaction from `target` (see `TransactionSource`); `storage` may be None
    for a dry run. A sample whose purge fails is reported as `error` and left as it was, so a batch never
    stops half-way; run again to retry it. Continue with `next_after` until it is None.
    """
    cutoff = now or datetime.now(UTC)
    params = {
        "now": cutoff,
        "limit": limit,
        "after_expires_at": after[0] if after else None,
        "after_id": after[1] if after else None,
    }
    async with transaction_from(target) as conn:
        rows = await fetch_all(conn, _Q["expired_samples"], params)
    next_after = (rows[-1]["expires_at"], rows[-1]["sample_id"]) if len(rows) == limit else None
    if not apply:
        planned = [purged_view(row, "would_trim" if row["keep"] else "would_purge") for row in rows]
        return PurgeBatch(samples=planned, next_after=next_after)
    if storage is None:
        raise ValueError("purging needs a storage to remove the objects from")
    samples = []
    for row in rows:
        try:
            if row["keep"]:
                purged = await trim_sample(
                    target, storage, row["sample_id"], actor=actor, expired_before=cutoff, detail=detail
                )
            else:
                purged = await purge_sample(
                    target,
                    storage,
                    row["sample_id"],
                    actor=actor,
                    reason="expired",
                    expired_before=cutoff,
                    detail=detail,
                )
        except (ServiceUnavailable, psycopg.OperationalError):
            raise  # Storage or the database is down: every other sample would fail the same way
        except (VoicegateError, psycopg.Error) as exc:
            failed = purged_view(row, "error")
            failed.error = f"{type(exc).__name__}: {exc}"[:300]
            samples.append(failed)
            continue
        samples.append(purged if purged is not None else purged_view(row, "skipped"))
    return PurgeBatch(samples=samples, next_after=next_after)
