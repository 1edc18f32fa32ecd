"""`voicegate ops erase-user <id or e-mail>`: erase a user, and everything of theirs.

A dry run lists what the erasure would delete outside Postgres (every provider voice their attempts and voices
ever named, every object of theirs in Storage, and the enrolment keys it would look up at the providers for voices
no row names); the rows go with the user. `--apply` deletes the user's
`auth.users` row exactly as Supabase Auth's admin deleteUser does, so the erasure it starts is the same one a
deletion in Supabase starts: the database's trigger records what to delete and queues it, the cascade removes
the rows, and the `user_erasure` consumer deletes the rest and writes the receipt (`voicegate ops erasures`).
A user erased before is no user any more: naming them by id answers the existing erasure, and changes nothing.
"""

from __future__ import annotations

import sys

from psycopg.errors import DeadlockDetected, LockNotAvailable

from backend.erasure import receipts
from scripts._common import Ops, UsageError, parser, run

NAME = "erase-user"
COLUMNS = ["kind", "target", "ref", "region", "outcome"]
#: Tries of the delete that starts the erasure.
ERASE_TRIES = 5
#: The count each kind of target goes to.
_COUNTED = {"provider_voice": "provider_voices", "enrolment_key": "enrolment_keys", "object": "objects"}


async def erase_user(ops: Ops) -> None:
    """Erase the named user (or say what erasing them would delete)."""
    report = ops.report
    who: str = ops.args.user.strip()
    async with ops.transaction() as conn:
        found = await receipts.subjects(conn, who)
    if not found:
        raise UsageError(f"no user has the id or address {who!r}, and no erasure has that id")
    if len(found) > 1:
        raise UsageError(f"{who!r} names {len(found)} users; name one by id")
    subject = found[0]
    report.notes.append(f"user {subject.user_id}")
    for name in ("provider_voices", "enrolment_keys", "objects", "erased", "already_erased"):
        report.counts[name] = 0
    if not subject.present:
        async with ops.transaction() as conn:
            erasure_id = await receipts.erasure_of(conn, subject.user_id)
        report.counts["already_erased"] = 1
        report.notes.append(f"already erased: erasure {erasure_id} (voicegate ops erasures {erasure_id})")
        _settle(ops)
        return
    async with ops.transaction() as conn:
        found_targets = await receipts.targets(conn, subject.user_id)
    outcome = "queued for the erasure" if ops.apply else "would delete"
    for target in found_targets:
        report.add(_COUNTED[target.kind])
        report.items.append(
            {
                "kind": target.kind,
                "target": target.target,
                "ref": target.ref,
                "region": target.region,
                "outcome": outcome,
            }
        )
    if not ops.apply:
        _settle(ops)
        return
    for attempt in range(1, ERASE_TRIES + 1):
        try:
            async with ops.transaction(write=True) as conn:
                erasure_id = await receipts.erase(conn, subject.user_id, ops.actor)
                await ops.audit(conn, "user.erase_requested", "erasure", erasure_id, {})
            break
        except (DeadlockDetected, LockNotAvailable) as exc:
            # The cascade locks the user's rows after their auth.users row, and the user's own work (a request, a
            # worker) locks one of their rows before its foreign key waits for that auth.users row: the database
            # rolls one of the two back. Their voices are held first (`receipts.erase`), so work on a voice is
            # waited for; a row of another table can still meet the cascade so. Nothing of the erasure was
            # written; it is asked again.
            if attempt == ERASE_TRIES:
                raise
            report.notes.append(f"try {attempt} met the user's own work ({type(exc).__name__}): asked again")
    report.counts["erased"] = 1
    report.notes.append(
        f"erasure {erasure_id} started: the worker deletes what is listed; follow it with "
        f"`voicegate ops erasures {erasure_id}`"
    )
    _settle(ops)


def _settle(ops: Ops) -> None:
    ops.report.counts["problems"] = 0
    ops.report.counts["fixed"] = ops.report.counts["erased"]
    ops.report.counts["unfixed"] = 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m scripts.erase_user` / `voicegate ops erase-user`."""
    arguments = parser(NAME, "Erase a user: their provider voices, objects and rows, with a receipt.")
    arguments.add_argument("user", help="the user's id, or their e-mail address")
    return run(NAME, argv, arguments, COLUMNS, erase_user)


if __name__ == "__main__":
    sys.exit(main())
