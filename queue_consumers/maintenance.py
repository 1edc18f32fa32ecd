"""The worker's maintenance sweep (DESIGN.md §4, §7): stale attempts are requeued, expired samples are
purged with their objects, and dead letters are reported, on the worker's own timer. Several workers
may sweep at once: requeueing is fenced by attempt versions, and both take rows with `skip locked`, so
a second sweep finds nothing to do."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from pathlib import Path

import msgspec

from backend.attempts.recovery import requeue_stale_attempts
from backend.context import Lifecycle
from backend.db.execute import fetch_one
from backend.db.pool import Pool, service_transaction
from backend.db.queries import load_queries
from backend.samples.purge import ObjectRemover, purge_expired_samples
from backend.settings import Settings

log = logging.getLogger(__name__)
_Q = load_queries(Path(__file__).with_suffix(".sql"))
SWEEP_LIMIT = 500


class SweepReport(msgspec.Struct, frozen=True):
    """What one sweep changed."""

    requeued: int
    purged: int


async def sweep(settings: Settings, pool: Pool, storage: ObjectRemover) -> SweepReport:
    """One pass: requeue attempts stuck past `stale_after_seconds`, purge up to `SWEEP_LIMIT` samples
    whose retention ended, and report dead letters."""
    async with service_transaction(pool) as conn:
        touched = await requeue_stale_attempts(
            conn,
            stale_after=timedelta(seconds=settings.stale_after_seconds),
            limit=SWEEP_LIMIT,
            actor="maintenance",
            apply=True,
        )
        dead = int((await fetch_one(conn, _Q["dead_letter_count"], {}))["n"])
    expired = await purge_expired_samples(pool, storage, limit=SWEEP_LIMIT, apply=True, actor="maintenance")
    purged = sum(1 for sample in expired.samples if sample.outcome == "purged")
    trimmed = sum(1 for sample in expired.samples if sample.outcome == "trimmed")
    failed = [sample for sample in expired.samples if sample.outcome == "error"]
    if touched:
        log.warning("maintenance: requeued or failed %d stale attempt(s)", len(touched))
    if purged:
        log.info("maintenance: purged %d expired sample(s)", purged)
    if trimmed:
        log.info("maintenance: removed the originals of %d expired sample(s) kept for re-enrolment", trimmed)
    for sample in failed:
        log.error("maintenance: could not purge expired sample %s: %s", sample.sample_id, sample.error)
    if dead:
        log.warning(
            "maintenance: %d dead-lettered message(s) await an operator (voicegate ops replay-dead-letters)", dead
        )
    return SweepReport(requeued=len(touched), purged=purged)


async def run_maintenance(settings: Settings, ctx: Lifecycle, stopping: asyncio.Event) -> None:
    """Sweep every `maintenance_interval` seconds until `stopping` is set; a failed sweep is logged
    and tried again next time (the database may be briefly away)."""
    while not stopping.is_set():
        try:
            await sweep(settings, ctx.pool, ctx.storage)
        except Exception:
            log.exception("maintenance sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.maintenance_interval)
