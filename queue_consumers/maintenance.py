"""The worker's maintenance sweep (DESIGN.md §4): stale attempts are requeued and dead letters are
reported, on the worker's own timer. Several workers may sweep at once: requeueing is fenced by
attempt versions and takes rows with `skip locked`, so a second sweep finds nothing to do."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from pathlib import Path

from psycopg_pool import AsyncConnectionPool

from backend.db.execute import fetch_one
from backend.db.pool import Connection, service_transaction
from backend.db.queries import load_queries
from backend.domain.recovery import requeue_stale_attempts
from backend.lifecycle.context import Lifecycle
from backend.settings import Settings

log = logging.getLogger(__name__)
Q = load_queries(Path(__file__).with_suffix(".sql"))
SWEEP_LIMIT = 500


async def sweep(settings: Settings, pool: AsyncConnectionPool[Connection]) -> int:
    """One pass: requeue attempts stuck past `stale_after_seconds`; returns how many were touched."""
    async with service_transaction(pool) as conn:
        touched = await requeue_stale_attempts(
            conn,
            stale_after=timedelta(seconds=settings.stale_after_seconds),
            limit=SWEEP_LIMIT,
            actor="maintenance",
            apply=True,
        )
        dead = int((await fetch_one(conn, Q["dead_letter_count"], {}))["n"])
    if touched:
        log.warning("maintenance: requeued or failed %d stale attempt(s)", len(touched))
    if dead:
        log.warning(
            "maintenance: %d dead-lettered message(s) await an operator (voicegate ops replay-dead-letters)", dead
        )
    return len(touched)


async def run_maintenance(settings: Settings, ctx: Lifecycle, stopping: asyncio.Event) -> None:
    """Sweep every `maintenance_interval` seconds until `stopping` is set; a failed sweep is logged
    and tried again next time (the database may be briefly away)."""
    while not stopping.is_set():
        try:
            await sweep(settings, ctx.pool)
        except Exception:
            log.exception("maintenance sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.maintenance_interval)
