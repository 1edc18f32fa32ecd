"""`voicegate ops sweep-orphan-objects`: objects in voicegate's buckets that no row claims, and (embedded
mode, or --local-storage-dir) files the local Storage stand-in holds with no object row, listed (dry
run) or removed (--apply) once nobody wrote them for the grace period, each with an audit event.

What counts as an orphan is in backend/storage/orphans.py and standins/storage/orphan_files.py; the
maintenance sweep removes the same ones on its own timer. Objects are removed through Storage (Supabase
Storage with the service key, or the stand-in run in this process, as purge-expired-samples does);
files with no row at all are deleted from the stand-in's directory.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from backend.storage.client import ObjectStorage
from backend.storage.orphans import OrphanObject, sweep_orphan_objects, sweep_orphans
from scripts._common import Ops, add_local_storage_dir, duration, local_storage_dir, open_storage, parser, run

NAME = "sweep-orphan-objects"
COLUMNS = ["kind", "bucket_id", "name", "size_bytes", "written_at", "outcome"]


def grace(ops: Ops) -> timedelta:
    """`--grace`, else VOICEGATE_ORPHAN_GRACE."""
    chosen: timedelta | None = ops.args.grace
    return chosen if chosen is not None else timedelta(seconds=ops.settings.orphan_grace_seconds)


async def sweep(ops: Ops) -> None:
    """List (dry run) or remove every orphan last written before the grace period, by the database's
    clock at the start of the run."""
    report = ops.report
    for name in ("problems", "removed", "skipped", "errors"):
        report.counts[name] = 0
    written_before = await ops.database_now() - grace(ops)
    report.notes.append(
        f"grace period {grace(ops)}: only what was last written before {written_before:%Y-%m-%d %H:%M:%S %Z}"
    )
    if ops.apply:
        await _objects(ops, await open_storage(ops), written_before)
    else:
        await _objects(ops, None, written_before)
    await _files(ops, written_before)
    report.counts["fixed"] = report.counts["removed"]
    # Skipped orphans were claimed, written again or removed by someone else meanwhile.
    report.counts["unfixed"] = report.counts["problems"] - report.counts["removed"] - report.counts["skipped"]


def _count(ops: Ops, kind: str, item: Mapping[str, object], outcome: str, error: str | None) -> None:
    ops.report.add("problems")
    if outcome in {"removed", "skipped"}:
        ops.report.add(outcome)
    elif outcome == "error":
        ops.report.add("errors")
    shown = error if outcome == "error" else outcome.replace("_", " ")
    ops.report.items.append({"kind": kind, **item, "outcome": shown})


async def _objects(ops: Ops, storage: ObjectStorage | None, written_before: datetime) -> None:
    objects: AsyncIterator[OrphanObject] = ops.sweep(
        "orphaned objects",
        sweep_orphan_objects,
        storage,
        lambda batch: (batch.objects, batch.next_after),
        written_before=written_before,
    )
    async for found in objects:
        item = {
            "bucket_id": found.bucket_id,
            "name": found.name,
            "size_bytes": found.size_bytes,
            "written_at": found.written_at,
            "object_id": str(found.id),
        }
        _count(ops, "object", item, found.outcome, found.error)


async def _files(ops: Ops, written_before: datetime) -> None:
    root = local_storage_dir(ops)
    if root is None:
        return
    from standins.storage.orphan_files import OrphanFile, StandInFiles  # noqa: PLC0415 - embedded only

    def take(batch: list[OrphanFile]) -> tuple[list[OrphanFile], Any]:
        return batch, ops.continue_after(batch, lambda found: found.key)

    files = ops.sweep(
        "files without an object row", sweep_orphans, StandInFiles(root), take, written_before=written_before
    )
    async for found in files:
        item = {
            "bucket_id": found.bucket_id,
            "name": found.name,
            "size_bytes": found.size_bytes,
            "written_at": found.written_at,
        }
        _count(ops, "file", item, found.outcome, found.error)


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m scripts.sweep_orphan_objects` / `voicegate ops sweep-orphan-objects`."""
    arguments = parser(NAME, "Remove objects no row claims (and stored files with no object row) past a grace period.")
    arguments.add_argument(
        "--grace",
        type=duration,
        metavar="DURATION",
        help="leave alone what was written this recently, e.g. 30m, 1h, 2d (default VOICEGATE_ORPHAN_GRACE, 1h)",
    )
    add_local_storage_dir(arguments)
    return run(NAME, argv, arguments, COLUMNS, sweep)


if __name__ == "__main__":
    sys.exit(main())
