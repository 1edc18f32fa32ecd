"""The worker's maintenance sweep (docs/concepts.md#what-runs): whether the project has a webhook endpoint is
written down, stale attempts are requeued, expired samples are purged with their objects, objects no
row claims (and, in embedded mode, stored files with no object row) are removed once past
`VOICEGATE_ORPHAN_GRACE`, voice manifests left half done are settled, and dead letters are reported, on
the worker's own timer. Several workers may sweep at once: requeueing is fenced by attempt versions, the
purge takes rows with `skip locked`, an orphan is checked again just before it is removed, and a manifest
is settled the way its writers make it (backend.clone.manifest), which any number may do at once, and a
retention batch deletes rows by id (one already gone is no error); so a second sweep finds nothing to do."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from datetime import UTC, datetime, timedelta

import msgspec

from backend import queues
from backend.clone.likeness import forget_judged_prints
from backend.clone.manifest import RecordCursor, settle_manifests
from backend.clone.recovery import requeue_stale_attempts
from backend.consents.purge import purge_expired_evidence
from backend.context import WorkerContext
from backend.db.units import Database, TransactionSource
from backend.errors import DatabaseUnavailable, StorageUnavailable
from backend.records.retention import prune
from backend.samples.purge import purge_expired_samples
from backend.settings import Settings
from backend.storage.client import ObjectRemover, ObjectStorage
from backend.storage.orphans import sweep_orphan_objects, sweep_orphans
from backend.webhooks.step import declare_project_endpoint

log = logging.getLogger(__name__)
SWEEP_LIMIT = 500
#: Seconds each of a sweep's transactions may take: more than a request's (VOICEGATE_DB_TIMEOUT), as
#: they scan whole tables and some wait on Storage, but still bounded if the database hangs.
SWEEP_BUDGET = 10.0
#: Seconds one retention batch may take: a request may wait on it (a key it deletes), so it is short.
RETENTION_BUDGET = 2.0
#: Where this process's sweeps stopped reading the voice manifests' records: each reads the next SWEEP_LIMIT.
_MANIFEST_RECORDS = RecordCursor()


class SweepReport(msgspec.Struct, frozen=True):
    """What one sweep changed."""

    requeued: int
    purged: int
    orphans_removed: int = 0
    evidence_purged: int = 0
    manifests_settled: int = 0
    pruned: dict[str, int] = msgspec.field(default_factory=dict)


async def sweep(settings: Settings, db: Database, storage: ObjectStorage) -> SweepReport:
    """One pass: say whether the project has a webhook endpoint and how many deliveries a user's may hold,
    requeue attempts stuck past `stale_after_seconds`, purge up to `SWEEP_LIMIT` samples whose retention ended
    and the evidence of as many spoken consents, remove up to `SWEEP_LIMIT` orphans past their grace period,
    settle up to `SWEEP_LIMIT` voice manifests left half done (reading the next `SWEEP_LIMIT` of their records),
    remove rows past their retention for at most half the interval between sweeps, and report dead letters."""
    source = functools.partial(db.service_transaction, budget=SWEEP_BUDGET)
    async with source() as conn:
        await declare_project_endpoint(
            conn, configured=settings.webhook_url is not None, pending=settings.webhook_pending
        )
        touched = await requeue_stale_attempts(
            conn,
            stale_after=timedelta(seconds=settings.stale_after_seconds),
            limit=SWEEP_LIMIT,
            actor="maintenance",
            apply=True,
        )
        dead = await queues.dead_letter_count(conn)
        forgotten = await forget_judged_prints(conn, limit=SWEEP_LIMIT)
    # Before the steps that wait on Storage or scan whole tables: one of them failing must not stop the bounds.
    pruned = await prune(
        functools.partial(db.service_transaction, budget=RETENTION_BUDGET),
        settings.retention,
        queues=queues.ALL,
        deadline=time.monotonic() + settings.maintenance_interval / 2,
    )
    expired = await purge_expired_samples(source, storage, limit=SWEEP_LIMIT, apply=True, actor="maintenance")
    purged = sum(1 for sample in expired.samples if sample.outcome == "purged")
    trimmed = sum(1 for sample in expired.samples if sample.outcome == "trimmed")
    failed = [sample for sample in expired.samples if sample.outcome == "error"]
    evidence = await purge_expired_evidence(source, storage, limit=SWEEP_LIMIT, actor="maintenance")
    orphans_removed = await _sweep_orphans(settings, source, storage)
    settled = await settle_manifests(db, storage, limit=SWEEP_LIMIT, cursor=_MANIFEST_RECORDS)
    if touched:
        log.warning("maintenance: requeued or failed %d stale attempt(s)", len(touched))
    if forgotten:
        log.info("maintenance: erased the samples' voiceprint of %d judged attempt(s)", forgotten)
    if purged:
        log.info("maintenance: purged %d expired sample(s)", purged)
    if evidence:
        log.info("maintenance: purged the evidence (recording, voiceprint) of %d spoken consent(s)", evidence)
    if settled:
        log.info("maintenance: settled %d voice manifest(s) a writer or a deletion left half done", settled)
    if pruned:
        log.info(
            "maintenance: removed %d row(s) past their retention (%s)",
            sum(pruned.values()),
            ", ".join(f"{table} {count}" for table, count in sorted(pruned.items())),
        )
    if trimmed:
        log.info("maintenance: removed the originals of %d expired sample(s) kept for re-enrolment", trimmed)
    for sample in failed:
        log.error("maintenance: could not purge expired sample %s: %s", sample.sample_id, sample.error)
    if dead:
        log.warning(
            "maintenance: %d dead-lettered message(s) await an operator (voicegate ops replay-dead-letters)", dead
        )
    return SweepReport(
        requeued=len(touched),
        purged=purged,
        orphans_removed=orphans_removed,
        manifests_settled=settled,
        evidence_purged=evidence,
        pruned=pruned,
    )


async def _sweep_orphans(settings: Settings, source: TransactionSource, storage: ObjectRemover) -> int:
    """Remove orphaned objects, and in embedded mode the stand-in's files with no row; how many went."""
    written_before = datetime.now(UTC) - timedelta(seconds=settings.orphan_grace_seconds)
    objects = await sweep_orphan_objects(
        source, storage, written_before=written_before, limit=SWEEP_LIMIT, apply=True, actor="maintenance"
    )
    swept = objects.objects
    if settings.embedded:
        from standins.storage.orphan_files import StandInFiles  # noqa: PLC0415 - embedded only

        files = await sweep_orphans(
            source,
            StandInFiles(settings.data_dir / "storage"),
            written_before=written_before,
            limit=SWEEP_LIMIT,
            apply=True,
            actor="maintenance",
        )
    else:
        files = []
    outcomes: list[tuple[str | None, str, str, str | None]] = [(o.bucket_id, o.name, o.outcome, o.error) for o in swept]
    outcomes += [(f.bucket_id, f.name, f.outcome, f.error) for f in files]
    removed = sum(1 for *_, outcome, _ in outcomes if outcome == "removed")
    if removed:
        log.info("maintenance: removed %d orphaned object(s) and file(s) past their grace period", removed)
    for bucket, name, outcome, error in outcomes:
        if outcome == "error":
            log.error("maintenance: could not remove orphan %s/%s: %s", bucket, name, error)
    return removed


async def run_maintenance(settings: Settings, ctx: WorkerContext, stopping: asyncio.Event) -> None:
    """Sweep every `maintenance_interval` seconds until `stopping` is set; a failed sweep is logged
    and tried again next time (the database may be briefly away)."""
    while not stopping.is_set():
        try:
            await sweep(settings, ctx.db, ctx.storage)
        except (DatabaseUnavailable, StorageUnavailable):
            pass  # logged as an outage where it was detected; the next sweep tries again
        except Exception:
            log.exception("maintenance sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.maintenance_interval)
