"""`voicegate ops purge-expired-samples`: the retention purge on demand. Expired samples are listed
(dry run) or purged with their original and processed objects (--apply), one sample per transaction,
objects first, each with an audit event; a sample kept for re-enrolment (its owner's consent, its voice
alive) loses only its original; see backend/samples/purge.py.

Where the objects are removed:
  * Supabase (DATABASE_URL set): Supabase Storage at SUPABASE_URL/storage/v1 with the service key
    (SUPABASE_SECRET_KEY or SUPABASE_SERVICE_ROLE_KEY), through the API's own storage client.
  * Embedded mode, or --local-storage-dir: the local Storage stand-in, run in this process
    (`standins.storage.in_process.standalone_storage`), so the purge removes rows in
    `storage.objects` and files under the storage directory exactly as a request to a running API
    would, without needing the API to run; the code path is the one production uses against Supabase.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import datetime

import msgspec

from backend.samples.purge import PurgedSample, purge_expired_samples
from backend.storage.client import ObjectStorage
from scripts._common import Ops, add_local_storage_dir, open_storage, parser, run

NAME = "purge-expired-samples"
COLUMNS = ["sample_id", "owner_id", "bucket_id", "object_path", "processed_object_path", "expires_at", "outcome"]


async def purge(ops: Ops) -> None:
    """List (dry run) or purge every sample expired by the database's clock at the start of the run."""
    report = ops.report
    for name in ("problems", "purged", "trimmed", "skipped", "errors"):
        report.counts[name] = 0
    cutoff = await ops.database_now()
    if ops.apply:
        await _batches(ops, await open_storage(ops), cutoff)
    else:
        await _batches(ops, None, cutoff)
    report.counts["fixed"] = report.counts["purged"] + report.counts["trimmed"]
    # Skipped samples were purged (or extended) by someone else meanwhile.
    report.counts["unfixed"] = report.counts["problems"] - report.counts["fixed"] - report.counts["skipped"]


async def _batches(ops: Ops, storage: ObjectStorage | None, cutoff: datetime) -> None:
    # Each sample is purged in a transaction of its own (see purge_sample); a dry run reads only.
    samples: AsyncIterator[PurgedSample] = ops.sweep(
        "expired samples", purge_expired_samples, storage, lambda batch: (batch.samples, batch.next_after), now=cutoff
    )
    async for sample in samples:
        ops.report.add("problems")
        if sample.outcome in {"purged", "trimmed", "skipped"}:
            ops.report.add(sample.outcome)
        elif sample.outcome == "error":
            ops.report.add("errors")
        item = msgspec.to_builtins(sample)
        item["outcome"] = sample.error if sample.outcome == "error" else sample.outcome.replace("_", " ")
        ops.report.items.append(item)


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m scripts.purge_expired_samples` / `voicegate ops purge-expired-samples`."""
    arguments = parser(NAME, "Purge samples past their retention, with their objects in Storage.")
    add_local_storage_dir(arguments)
    return run(NAME, argv, arguments, COLUMNS, purge)


if __name__ == "__main__":
    sys.exit(main())
