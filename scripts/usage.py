"""`voicegate ops usage`: what each user spent at each provider over a period, from the usage ledger: characters
sent, audio seconds returned and calls, per user and provider. It changes nothing (no --apply).

The period is `--since` to `--until` (ISO dates or times, UTC unless they say otherwise; `--until` defaults to
now), or the last `--days` days (1 by default). `--json` prints one document, `--csv` the rows alone, for a
spreadsheet or a bill.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from backend.usage import ledger
from scripts._common import Ops, UsageError, parser, run

NAME = "usage"
COLUMNS = ["email", "owner_id", "provider", "characters", "audio_seconds", "calls"]


def _moment(value: str) -> datetime:
    """An argparse type for an ISO date or time; one without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO date or time such as 2026-11-01") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        days = 0
    if days < 1:
        raise argparse.ArgumentTypeError("--days must be a whole number of at least 1")
    return days


async def usage_report(ops: Ops) -> None:
    """Fill the report with each user's spend at each provider over the period."""
    now = await ops.database_now()
    until: datetime = ops.args.until or now
    since: datetime = ops.args.since or until - timedelta(days=ops.args.days or 1)
    if since >= until:
        raise UsageError(f"the period is empty: --since {since.isoformat()} is not before {until.isoformat()}")
    async with ops.transaction() as conn:
        rows = await ledger.report(conn, since, until)
    report = ops.report
    for row in rows:
        report.items.append(
            {
                "email": row.email or "",
                "owner_id": str(row.owner_id),
                "provider": row.provider,
                "characters": row.characters,
                "audio_seconds": round(row.audio_seconds, 3),
                "calls": row.calls,
            }
        )
    report.counts["users"] = len({row.owner_id for row in rows})
    report.counts["characters"] = sum(row.characters for row in rows)
    report.counts["audio_seconds"] = round(sum(row.audio_seconds for row in rows))
    report.counts["calls"] = sum(row.calls for row in rows)
    report.notes.append(f"period: {since.isoformat(timespec='seconds')} to {until.isoformat(timespec='seconds')}")
    kept = ops.settings.usage_retention_days
    if kept > 0 and since < now - timedelta(days=kept):
        report.notes.append(
            f"the ledger keeps {kept:g} days (VOICEGATE_USAGE_RETENTION_DAYS): calls before"
            f" {(now - timedelta(days=kept)).isoformat(timespec='seconds')} are no longer counted"
        )


def _check(args: argparse.Namespace) -> str | None:
    if args.days is not None and (args.since is not None or args.until is not None):
        return "give either --days or --since/--until, not both"
    if args.json and args.csv:
        return "give either --json or --csv, not both"
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m scripts.usage` / `voicegate ops usage`."""
    arguments = parser(NAME, "Characters and audio seconds per user and provider over a period.", changes=False)
    arguments.add_argument("--since", type=_moment, metavar="WHEN", help="start of the period (ISO date or time)")
    arguments.add_argument("--until", type=_moment, metavar="WHEN", help="end of the period (default: now)")
    arguments.add_argument("--days", type=_days, metavar="N", help="the last N days (default 1)")
    arguments.add_argument("--csv", action="store_true", help="print the rows as CSV instead of tables")
    return run(NAME, argv, arguments, COLUMNS, usage_report, check=_check)


if __name__ == "__main__":
    sys.exit(main())
