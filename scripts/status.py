"""`voicegate ops status`: queue depths and oldest message ages, attempts by state, dead letters and
stale leases, read in a handful of read-only queries (it changes nothing, so it has no --apply).

Problems (exit 1): messages in `voice_dead_letter` (see replay-dead-letters) and stale leases (see
recover-stale-attempts). Expired samples waiting for the purge are shown but are not a problem.
"""

from __future__ import annotations

import sys
from pathlib import Path

from backend import queues
from backend.db.execute import fetch_all, fetch_one
from backend.db.queries import load_queries
from scripts._common import Ops, parser, run

NAME = "status"
_Q = load_queries(Path(__file__).with_suffix(".sql"))
STATUSES = ("queued", "processing", "verifying", "ready", "failed", "canceled", "superseded")
COLUMNS = ["queue", "depth", "oldest_age_s", "newest_age_s", "total_sent"]


async def status(ops: Ops) -> None:
    """Fill the report with the current figures."""
    report = ops.report
    async with ops.transaction() as conn:
        metrics = await fetch_all(conn, _Q["queue_metrics"], {})
        by_status = {row["status"]: row["n"] for row in await fetch_all(conn, _Q["attempts_by_status"], {})}
        leases = await fetch_one(conn, _Q["lease_counts"], {})
        expired = await fetch_one(conn, _Q["expired_samples"], {})
    for row in metrics:
        report.items.append(
            {
                "queue": row["queue_name"],
                "depth": row["queue_length"],
                "oldest_age_s": row["oldest_msg_age_sec"],
                "newest_age_s": row["newest_msg_age_sec"],
                "total_sent": row["total_messages"],
            }
        )
        report.counts[f"queue.{row['queue_name']}.depth"] = row["queue_length"]
    for state in STATUSES:
        report.counts[f"attempts.{state}"] = by_status.get(state, 0)
    report.counts["attempts.total"] = sum(by_status.values())
    dead_letters = next((row["queue_length"] for row in metrics if row["queue_name"] == queues.DEAD_LETTER), 0)
    report.counts["dead_letters"] = dead_letters
    report.counts["live_leases"] = leases["live_leases"]
    report.counts["stale_leases"] = leases["stale_leases"]
    report.counts["expired_samples"] = expired["n"]
    report.counts["problems"] = dead_letters + leases["stale_leases"]
    report.counts["fixed"] = 0
    report.counts["unfixed"] = report.counts["problems"]
    if dead_letters:
        report.notes.append(f"{dead_letters} dead letter(s): inspect with `voicegate ops replay-dead-letters`")
    if leases["stale_leases"]:
        report.notes.append(
            f"{leases['stale_leases']} stale lease(s): inspect with `voicegate ops recover-stale-attempts`"
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m scripts.status` / `voicegate ops status`."""
    arguments = parser(NAME, "Queue depths, attempts by state, dead letters and stale leases.", changes=False)
    return run(NAME, argv, arguments, COLUMNS, status)


if __name__ == "__main__":
    sys.exit(main())
