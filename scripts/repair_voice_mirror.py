"""`voicegate ops repair-voice-mirror`: compare every reflection's `voice` mirror (and `voice_id`) with
its active attempt and, with --apply, rewrite the drifted ones through the lifecycle.

The rewrite is `voicegate.repair_voice_mirror`: under the attempt's row lock it checks the drift
again, then runs a transition with no change (the attempt's version moves on and the mirror and
voice row are republished exactly as every transition publishes them) and writes the audit event.
A mirror that names a clone while its reflection has no active attempt cannot be rewritten that way;
it is reported and left for a person to look at.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from backend.db.connection import Connection
from backend.records import mirrors
from backend.records.mirrors import MirrorCheck
from scripts._common import Ops, parser, run

NAME = "repair-voice-mirror"
COLUMNS = ["reflection_id", "attempt_id", "status", "drift", "outcome"]


async def repair(ops: Ops) -> None:
    """Scan every reflection in batches; repair each drifted one in its batch's transaction."""
    report = ops.report
    for name in ("reflections", "problems", "repaired", "skipped", "locked", "no_active_attempt"):
        report.counts[name] = 0
    async with ops.transaction() as conn:
        total = await mirrors.count_reflections(conn)
    after = None
    with ops.progress.task("reflections", total) as advance:
        while True:
            async with ops.transaction() as conn:
                rows = await mirrors.check_batch(conn, after=after, limit=ops.batch_size)
            drifted = [row for row in rows if row.drift]
            if drifted and ops.apply:
                async with ops.transaction(write=True) as conn:
                    for row in drifted:
                        await _repair(ops, conn, row)
            else:
                for row in drifted:
                    _found(ops, row, "unrepairable" if row.attempt_id is None else "would repair")
            report.add("reflections", len(rows))
            advance(len(rows))
            if len(rows) < ops.batch_size:
                break
            after = rows[-1].reflection_id
    report.counts["fixed"] = report.counts["repaired"]
    report.counts["unfixed"] = report.counts["problems"] - report.counts["repaired"] - report.counts["skipped"]


def _found(ops: Ops, row: MirrorCheck, outcome: str) -> None:
    ops.report.add("problems")
    if row.attempt_id is None:
        ops.report.add("no_active_attempt")
    ops.report.items.append(
        {
            "reflection_id": row.reflection_id,
            "attempt_id": row.attempt_id,
            "status": row.status,
            "drift": row.drift,
            "outcome": outcome,
        }
    )


async def _repair(ops: Ops, conn: Connection, row: MirrorCheck) -> None:
    if row.attempt_id is None:
        _found(ops, row, "unrepairable")
        return
    result = await mirrors.repair(conn, row.reflection_id, actor=ops.actor, detail=ops.audit_detail)
    outcome = result.outcome
    # `consistent`: a worker republished it since the scan (skipped); `skipped_locked`: held by
    # another transaction right now (still a problem).
    if outcome == "repaired":
        ops.report.add("repaired")
    elif outcome == "no_active_attempt":
        outcome = "unrepairable"
    elif outcome == "skipped_locked":
        ops.report.add("locked")  # busy right now: still drifted, run again
    else:
        ops.report.add("skipped")
    _found(ops, replace(row, drift=result.drift or row.drift), outcome)


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m scripts.repair_voice_mirror` / `voicegate ops repair-voice-mirror`."""
    arguments = parser(NAME, "Find reflections whose voice mirror disagrees with their active attempt; rewrite it.")
    return run(NAME, argv, arguments, COLUMNS, repair)


if __name__ == "__main__":
    sys.exit(main())
