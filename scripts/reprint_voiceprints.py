"""`voicegate ops reprint-voiceprints`: the voiceprints of GE2E, the speaker encoder before ECAPA-TDNN, printed again
with ECAPA-TDNN (backend/samples/reprint.py; docs/ownership.md, "When the speaker encoder changes"). Each consent
whose print is GE2E's is printed from its kept reading, each such sample from its cleaned copy (with its partial
prints); a verified consent and a ready sample join the ownership registry again. A sample whose cleaned copy is
gone loses its print. A dry run lists what would be printed again and what dropped; `--apply` does it, one row a
transaction, each print on one CPU thread (about 0.1 s of CPU per 5 s of speech).

Problems (exit 1): prints of GE2E still stored (after `--apply`: consents whose reading is gone, cannot be read or
holds too little speech now, which keep GE2E's print and compare with nothing).
Where the recordings are read: as `purge-expired-samples` removes objects (Supabase Storage with the service key,
or the local Storage stand-in in embedded mode or with --local-storage-dir).
"""

from __future__ import annotations

import sys

import msgspec

from backend.samples.reprint import reprint_all
from scripts._common import Ops, add_local_storage_dir, open_storage, parser, run

NAME = "reprint-voiceprints"
COLUMNS = ["kind", "id", "owner_id", "outcome", "error"]


async def reprint(ops: Ops) -> None:
    """List (dry run) or print again every stored print of GE2E."""
    report = ops.report
    for name in ("problems", "fixed", "reprinted", "dropped", "no speech", "errors"):
        report.counts[name] = 0
    db, cpu = await ops.run.service()
    storage = await open_storage(ops) if ops.apply else None
    async for done in reprint_all(db, storage, cpu, actor=ops.actor):
        report.add("problems")
        report.add("errors" if done.outcome in {"error", "gone"} else done.outcome)
        if ops.apply and done.outcome in {"reprinted", "dropped"}:
            report.add("fixed")
        report.items.append(msgspec.to_builtins(done))
    report.counts["unfixed"] = report.counts["problems"] - report.counts["fixed"]


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m scripts.reprint_voiceprints` / `voicegate ops reprint-voiceprints`."""
    arguments = parser(NAME, "Print again, with ECAPA-TDNN, the voiceprints GE2E made.")
    add_local_storage_dir(arguments)
    return run(NAME, argv, arguments, COLUMNS, reprint)


if __name__ == "__main__":
    sys.exit(main())
