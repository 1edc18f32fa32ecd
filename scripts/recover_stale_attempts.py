"""`voicegate ops recover-stale-attempts`: attempts no worker will pick up again (an expired lease with
nothing left to redeliver it, or `queued` with no message past `--stale-after`), requeued or, with
`--fail` (or no retries left), failed with a reason the user can read.

Each batch is found and changed in one short transaction; every change re-checks the attempt under
its row lock (a live lease or a newer version is left alone) and writes its audit event with it.
See backend/clone/recovery.py.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import msgspec

from backend.clone.recovery import StaleAttempt, requeue_stale_attempts
from scripts._common import Ops, duration, parser, run

NAME = "recover-stale-attempts"
COLUMNS = ["attempt_id", "status", "reason", "lease_expires_at", "retry", "action", "outcome"]
DEFAULT_STALE_AFTER = timedelta(minutes=15)
FIXED = {"requeued", "failed"}


async def recover(ops: Ops) -> None:
    """Walk every stale attempt in id order, batch by batch."""
    report = ops.report
    for name in ("problems", "lease_expired", "queued_without_message", "requeued", "failed", "skipped", "locked"):
        report.counts[name] = 0
    stale_after: timedelta = ops.args.stale_after

    async def page(after: Any) -> tuple[list[StaleAttempt], Any]:
        async with ops.transaction(write=ops.apply) as conn:
            batch = await requeue_stale_attempts(
                conn,
                stale_after=stale_after,
                limit=ops.batch_size,
                actor=ops.actor,
                apply=ops.apply,
                fail=ops.args.fail,
                after=after,
                detail=ops.audit_detail,
            )
        return batch, ops.continue_after(batch, lambda attempt: attempt.attempt_id)

    async for attempt in ops.pages("stale attempts", page):
        report.add("problems")
        report.add(attempt.reason)
        if attempt.outcome in FIXED:
            report.add(attempt.outcome)
        elif attempt.outcome == "skipped_locked":
            report.add("locked")  # busy right now: still a problem, run again
        elif attempt.outcome is not None:
            report.add("skipped")
        item = msgspec.to_builtins(attempt)
        item["retry"] = f"{attempt.retry_count}/{attempt.max_retries}"
        item["outcome"] = attempt.outcome or f"would {attempt.action}"
        report.items.append(item)
    report.counts["fixed"] = report.counts["requeued"] + report.counts["failed"]
    # Skipped attempts moved on by themselves (a worker took them, or they changed): not left broken.
    # Locked ones were busy in another transaction and stay counted as unfixed.
    report.counts["unfixed"] = report.counts["problems"] - report.counts["fixed"] - report.counts["skipped"]


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m scripts.recover_stale_attempts` / `voicegate ops recover-stale-attempts`."""
    arguments = parser(NAME, "Requeue (or fail) attempts whose lease expired or that wait with no message.")
    arguments.add_argument(
        "--stale-after",
        type=duration,
        default=DEFAULT_STALE_AFTER,
        metavar="DURATION",
        help="how long a queued attempt may wait without a message, and how long an expired lease may "
        "wait for its message to come back (default 15m)",
    )
    arguments.add_argument(
        "--fail", action="store_true", help="fail the stale attempts (code stale_attempt) instead of requeueing them"
    )
    return run(NAME, argv, arguments, COLUMNS, recover)


if __name__ == "__main__":
    sys.exit(main())
