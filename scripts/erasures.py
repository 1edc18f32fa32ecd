"""`voicegate ops erasures [<erasure or user id>]`: the erasures, newest first, with their state and how many of
their items are pending or refused; or one erasure, with each item and its receipt once it is finished.

Read only (it has no --apply). Problems (exit 1): an erasure with a refused item, which a provider or Storage would
not delete (its error says why: an operator follows it up with them).
"""

from __future__ import annotations

import argparse
import sys
import uuid

import msgspec

from backend.erasure import receipts
from scripts._common import Ops, UsageError, parser, run

NAME = "erasures"
COLUMNS = ["id", "state", "requested_by", "requested_at", "finished_at", "items", "pending", "refused"]
ITEM_COLUMNS = ["kind", "target", "ref", "region", "state", "tries", "last_error", "done_at"]
STATES = ("pending", "working", "done", "incomplete")


async def erasures(ops: Ops) -> None:
    """List the erasures, or show one."""
    if ops.args.erasure is not None:
        await _one(ops, ops.args.erasure)
        return
    report = ops.report
    for state in STATES:
        report.counts[state] = 0
    before = None
    while True:
        async with ops.transaction() as conn:
            rows = await receipts.erasures(conn, state=ops.args.state, before=before, limit=ops.batch_size)
        for row in rows:
            report.add(row.state)
            report.items.append(msgspec.structs.asdict(row))
        if len(rows) < ops.batch_size:
            break
        before = (rows[-1].requested_at, rows[-1].id)
    _settle(ops, report.counts["incomplete"])


async def _one(ops: Ops, erasure_or_user: uuid.UUID) -> None:
    report = ops.report
    async with ops.transaction() as conn:
        found = await receipts.erasure(conn, erasure_or_user)
    if found is None:
        raise UsageError(f"no erasure has the id {erasure_or_user}, nor is one of that user")
    report.columns = ITEM_COLUMNS
    report.notes.append(f"erasure {found.id} of user {found.user_id}: {found.state}, asked by {found.requested_by}")
    for item in found.items:
        report.add(f"{item.kind}.{item.state}")
        report.items.append(msgspec.structs.asdict(item))
    report.counts["rows_cascaded"] = sum(int(n) for n in found.cascaded.values())
    if found.receipt is not None:
        # A line a part of the receipt, so that each reads whole.
        for part, value in found.receipt.items():
            report.notes.append(f"receipt {part}: " + msgspec.json.encode(value).decode())
    _settle(ops, 1 if found.state == "incomplete" else 0)


def _settle(ops: Ops, problems: int) -> None:
    ops.report.counts["problems"] = problems
    ops.report.counts["fixed"] = 0
    ops.report.counts["unfixed"] = problems


def _check(args: argparse.Namespace) -> str | None:
    if args.erasure is not None and args.state is not None:
        return "--state lists erasures; it does not go with an erasure's id"
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m scripts.erasures` / `voicegate ops erasures`."""
    arguments = parser(NAME, "The erasures of users: their state, items and receipts.", changes=False)
    arguments.add_argument("erasure", nargs="?", type=uuid.UUID, help="an erasure's id, or its user's: show that one")
    arguments.add_argument("--state", choices=STATES, help="list only the erasures in this state")
    return run(NAME, argv, arguments, COLUMNS, erasures, check=_check)


if __name__ == "__main__":
    sys.exit(main())
