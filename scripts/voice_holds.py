"""`voicegate ops voice-holds`: the consents and samples held for review because their voice matched a print of
another account (docs/ownership.md), oldest first, with both accounts, what of the other account's it matched and
the score; and an operator's decision on one: `--release HOLD` (the consent becomes verified, the sample ready, and
its print joins the registry under its account) or `--refuse HOLD` (the consent is rejected `ownership_refused`,
the sample fails), with `--note`, audited. A decision is a dry run unless given `--apply`.

Problems (exit 1): holds still waiting for a decision.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Literal

import msgspec

from backend.records import ownership
from scripts._common import Ops, UsageError, parser, run

NAME = "voice-holds"
COLUMNS = [
    "id",
    "state",
    "subject",
    "subject_id",
    "owner_id",
    "matched_owner_id",
    "matched_subject",
    "score",
    "evidence_purged_at",
]
#: Every state a hold can be in: `asked` waits for its uploader's reading, `answered` was settled by it.
STATES = ("held", "released", "refused", "asked", "answered")


async def voice_holds(ops: Ops) -> None:
    """List the holds, or decide one."""
    args = ops.args
    if args.release is not None or args.refuse is not None:
        decision: Literal["released", "refused"] = "released" if args.release is not None else "refused"
        await _decide(ops, args.release or args.refuse, decision)
        return
    report = ops.report
    for state in STATES:
        report.counts[state] = 0
    after = None
    while True:
        async with ops.transaction() as conn:
            found = await ownership.holds(conn, state=args.state, after=after, limit=ops.batch_size)
        for hold in found:
            report.add(hold.state)
            report.items.append(msgspec.structs.asdict(hold))
        if len(found) < ops.batch_size:
            break
        after = (found[-1].created_at, found[-1].id)
    _settle(ops, report.counts["held"], 0)


async def _decide(ops: Ops, hold_id: uuid.UUID, decision: Literal["released", "refused"]) -> None:
    report = ops.report
    async with ops.transaction() as conn:
        try:
            hold = await ownership.hold(conn, hold_id)
        except ownership.HoldNotFound:
            raise UsageError(f"no hold has the id {hold_id}") from None
    if hold.state not in {"held", "asked"}:
        raise UsageError(f"hold {hold_id} is {hold.state} already ({hold.decided_by})")
    report.notes.append(
        f"{hold.subject} {hold.subject_id} of account {hold.owner_id} matched a {hold.matched_subject} of account "
        f"{hold.matched_owner_id or '(erased)'} at {hold.score:.3f} (threshold {hold.threshold:.2f})"
    )
    if hold.evidence_purged_at is not None:
        report.notes.append(
            f"its recording and print were purged by retention on {hold.evidence_purged_at:%Y-%m-%d}: a release "
            "registers no print and the consent covers no sample; a refusal rejects it"
        )
    if ops.apply:
        async with ops.transaction(write=True) as conn:
            hold = await ownership.decide(conn, hold_id, decision, actor=ops.actor, note=ops.args.note)
        report.notes.append(f"{decision}: {hold.subject} {hold.subject_id}")
    else:
        report.notes.append(f"would be {decision}")
    report.items.append(msgspec.structs.asdict(hold))
    report.add(decision if ops.apply else "held")
    _settle(ops, 0 if ops.apply else 1, 1 if ops.apply else 0)


def _settle(ops: Ops, waiting: int, decided: int) -> None:
    ops.report.counts["problems"] = waiting + decided
    ops.report.counts["fixed"] = decided
    ops.report.counts["unfixed"] = waiting


def _check(args: argparse.Namespace) -> str | None:
    if args.release is not None and args.refuse is not None:
        return "--release and --refuse decide one hold each; give one"
    deciding = args.release is not None or args.refuse is not None
    if deciding and args.state is not None:
        return "--state lists holds; it does not go with a decision"
    if args.note is not None and not deciding:
        return "--note goes with --release or --refuse"
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m scripts.voice_holds` / `voicegate ops voice-holds`."""
    arguments = parser(NAME, "Consents and samples held for review as another account's voice: list, release, refuse.")
    arguments.add_argument("--state", choices=STATES, help="list only the holds in this state")
    arguments.add_argument("--release", type=uuid.UUID, metavar="HOLD", help="release this hold (with --apply)")
    arguments.add_argument("--refuse", type=uuid.UUID, metavar="HOLD", help="refuse this hold (with --apply)")
    arguments.add_argument("--note", help="why, recorded with the decision and on its audit event")
    return run(NAME, argv, arguments, COLUMNS, voice_holds, check=_check)


if __name__ == "__main__":
    sys.exit(main())
