"""`voicegate ops status`: queue depths and oldest message ages, attempts by state, dead letters, stale
leases, orphaned objects, and each table that grows with use (its rows, bytes, dead rows and oldest row), read
in a handful of read-only queries (it changes nothing, so it has no --apply).

Problems (exit 1): messages in `voice_dead_letter` (see replay-dead-letters), stale leases (see
recover-stale-attempts), and objects no row claims, or (embedded mode, --local-storage-dir) stored files
with no object row, past the grace period VOICEGATE_ORPHAN_GRACE (see sweep-orphan-objects). Expired
samples waiting for the purge are shown but are not a problem.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

from backend import queues
from backend.domain.attempts import AttemptStatus
from backend.records import attempts, retention, sample_rows
from backend.storage.orphans import sweep_orphan_objects
from scripts._common import Ops, add_local_storage_dir, local_storage_dir, parser, run

NAME = "status"
COLUMNS = [
    "queue",
    "depth",
    "oldest_age_s",
    "newest_age_s",
    "total_sent",
    "table",
    "rows",
    "bytes",
    "dead_rows",
    "oldest",
]


async def status(ops: Ops) -> None:
    """Fill the report with the current figures."""
    report = ops.report
    async with ops.transaction() as conn:
        metrics = await queues.metrics(conn)
        by_status = await attempts.count_by_status(conn)
        stale_leases, live_leases = await attempts.lease_counts(conn)
        expired = await sample_rows.count_expired(conn)
        tables = await retention.table_sizes(conn)
    for queue in metrics:
        report.items.append(
            {
                "queue": queue.queue,
                "depth": queue.depth,
                "oldest_age_s": queue.oldest_age_s,
                "newest_age_s": queue.newest_age_s,
                "total_sent": queue.total_sent,
            }
        )
        report.counts[f"queue.{queue.queue}.depth"] = queue.depth
    for table in tables:
        report.items.append(
            {
                "table": table.name,
                "rows": table.estimated_rows,
                "bytes": table.total_bytes,
                "dead_rows": table.dead_rows,
                "oldest": table.oldest.isoformat() if table.oldest is not None else None,
            }
        )
        report.counts[f"table.{table.name}.bytes"] = table.total_bytes
    for state in AttemptStatus:
        report.counts[f"attempts.{state}"] = by_status.get(state, 0)
    report.counts["attempts.total"] = sum(by_status.values())
    dead_letters = next((queue.depth for queue in metrics if queue.queue == queues.DEAD_LETTER), 0)
    report.counts["dead_letters"] = dead_letters
    report.counts["live_leases"] = live_leases
    report.counts["stale_leases"] = stale_leases
    report.counts["expired_samples"] = expired
    written_before = await ops.database_now() - timedelta(seconds=ops.settings.orphan_grace_seconds)
    orphans = await _orphan_objects(ops, written_before)
    files = await _orphan_files(ops, written_before)
    report.counts["orphan_objects"] = orphans
    if files is not None:
        report.counts["orphan_files"] = files
    report.counts["problems"] = dead_letters + stale_leases + orphans + (files or 0)
    report.counts["fixed"] = 0
    report.counts["unfixed"] = report.counts["problems"]
    if orphans or files:
        report.notes.append(
            f"{orphans + (files or 0)} orphan(s) past the grace period: remove with"
            " `voicegate ops sweep-orphan-objects --apply` (the maintenance sweep removes them too)"
        )
    if dead_letters:
        report.notes.append(f"{dead_letters} dead letter(s): inspect with `voicegate ops replay-dead-letters`")
    if stale_leases:
        report.notes.append(f"{stale_leases} stale lease(s): inspect with `voicegate ops recover-stale-attempts`")


async def _orphan_objects(ops: Ops, written_before: datetime) -> int:
    """Objects no row claims, last written before `written_before`."""
    count, after = 0, None
    while True:
        batch = await sweep_orphan_objects(
            ops.transaction,
            None,
            written_before=written_before,
            limit=ops.batch_size,
            apply=False,
            actor=ops.actor,
            after=after,
        )
        count += len(batch.objects)
        if batch.next_after is None:
            return count
        after = batch.next_after


async def _orphan_files(ops: Ops, written_before: datetime) -> int | None:
    """Files the local Storage stand-in holds with no object row; None when Storage is not local."""
    root = local_storage_dir(ops)
    if root is None:
        return None
    from standins.storage.orphan_files import find_orphan_files  # noqa: PLC0415 - embedded only

    count, after = 0, None
    while True:
        files = await find_orphan_files(
            ops.transaction, root, written_before=written_before, limit=ops.batch_size, after=after
        )
        count += len(files)
        if len(files) < ops.batch_size:
            return count
        after = files[-1].key


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m scripts.status` / `voicegate ops status`."""
    arguments = parser(
        NAME,
        "Queue depths, attempts by state, dead letters, stale leases, orphaned objects and growing tables.",
        changes=False,
    )
    add_local_storage_dir(arguments)
    return run(NAME, argv, arguments, COLUMNS, status)


if __name__ == "__main__":
    sys.exit(main())
