"""`voicegate ops migrate-voices --to PROVIDER [--from P] [--voice ID ...] [--apply]`: move voices to
another provider without losing the references they had.

For each chosen voice (live, cloned, on another provider than `--to`, no clone under way):
  * reuse: the voice had a reference at `--to` (a rollback), and `get` there says it still exists: a
    `provider_migration` attempt takes that reference back and verifies it; nothing is enrolled;
  * re-enrol: otherwise the attempt enrols the voice at `--to` from its stored consented sample; a
    voice without one is reported (`no_sample`) and left as it is.
The attempts are ordinary ones: queued for the workers, superseding the reflection's active attempt
(its mirror and launch gate follow; a reflection's voice needs its preview heard again), publishing to
the voice row, and recording the new reference once ready. Jobs queued for a moved voice wait for its
attempt. Dry run by default (read-only transactions; provider `get`s only); `--apply` makes each
voice's attempt in its own transaction with an audit event (`voice.migrate`).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any, Literal

from backend.clone import portability
from backend.db.connection import Connection
from backend.domain.attempts import AttemptSource
from backend.providers.config import PROVIDER_NAMES, key_variable
from backend.providers.errors import ProviderError, VoiceNotFoundError
from backend.providers.registry import ProviderSet
from backend.records import attempts, synthesis_jobs, voice_rows
from backend.records.voice_rows import ClonedVoice
from scripts._common import Ops, UsageError, parser, run

NAME = "migrate-voices"
COLUMNS = ["voice_id", "from_provider", "to_provider", "plan", "reference", "sample_id", "attempt_id", "outcome"]
SOURCE = AttemptSource.PROVIDER_MIGRATION


async def migrate(ops: Ops) -> None:
    """Plan (dry run) or start (--apply) the move of every chosen voice, one batch of voices at a time."""
    to: str = ops.args.to
    settings = ops.settings.providers
    if settings is None or not settings.has_key(to):
        raise UsageError(f"--to {to}: that provider is not configured ({key_variable(to)} is not set)")
    report = ops.report
    for name in ("voices", "to_move", "moved", "reused", "reenrolled", "no_sample", "skipped", "errors"):
        report.counts[name] = 0
    async with ops.transaction() as conn:
        total = await voice_rows.count_cloned(conn, source=ops.args.source, ids=ops.args.voice)
    providers = await ops.run.providers()
    with ops.progress.task(f"voices to {to}", total) as advance:
        after: uuid.UUID | None = None
        while True:
            async with ops.transaction() as conn:
                batch = await voice_rows.cloned(
                    conn, source=ops.args.source, ids=ops.args.voice, after=after, limit=ops.batch_size
                )
            for voice in batch:
                await _one(ops, providers, voice)
                advance(1)
            if len(batch) < ops.batch_size:
                break
            after = batch[-1].id
    named: list[uuid.UUID] = ops.args.voice or []
    seen = {item["voice_id"] for item in report.items}
    for missing in (voice for voice in named if voice not in seen):
        report.notes.append(
            f"voice {missing}: no such live, cloned voice{'' if ops.args.source is None else ' on --from'}"
        )
    report.counts["problems"] = report.counts["no_sample"] + report.counts["errors"]
    report.counts["fixed"] = 0
    report.counts["unfixed"] = report.counts["problems"]


async def _one(ops: Ops, providers: ProviderSet, voice: ClonedVoice) -> None:
    """Plan one voice, then (with --apply) make its attempt."""
    report, to = ops.report, ops.args.to
    report.add("voices")
    async with ops.transaction() as conn:
        under_way = await attempts.open_for_voice(conn, voice.id)
        sample = await portability.stored_sample(conn, voice.id)
    item: dict[str, Any] = {
        "voice_id": voice.id,
        "from_provider": voice.tts_provider,
        "to_provider": to,
        "plan": None,
        "reference": None,
        "sample_id": sample,
        "attempt_id": None,
    }
    report.items.append(item)
    if voice.tts_provider == to:
        item["outcome"] = f"skipped: already on {to}"
        report.add("skipped")
        return
    if under_way is not None:
        item["outcome"] = f"skipped: attempt {under_way.id} is still under way"
        report.add("skipped")
        return
    reference = await _reusable(ops, providers, voice, item)
    if reference is False:
        return
    if reference is None and sample is None:
        item["plan"] = "re-enrol"
        item["outcome"] = f"left: {portability.NO_SAMPLE}"
        report.add("no_sample")
        return
    item["plan"] = "reuse" if reference is not None else "re-enrol"
    report.add("to_move")
    if not ops.apply:
        item["outcome"] = f"would {item['plan']}"
        return
    item["outcome"] = await _apply(ops, voice, reference, item)


async def _reusable(
    ops: Ops, providers: ProviderSet, voice: ClonedVoice, item: dict[str, Any]
) -> dict[str, Any] | Literal[False] | None:
    """The voice's old reference at `--to` when that provider still has it; None when there is none
    (or it died: recorded with --apply); False when the provider could not be asked (reported)."""
    to = ops.args.to
    async with ops.transaction() as conn:
        reference = await portability.live_reference(conn, voice.id, to)
    if reference is None:
        return None
    item["reference"] = reference["provider_voice_id"]
    try:
        await providers.get(to).get(reference["provider_voice_id"])
    except VoiceNotFoundError:
        if ops.apply:
            async with ops.transaction(write=True) as conn:
                await portability.mark_gone(conn, voice.id, to, reference["provider_voice_id"], "voice_not_found")
        item["reference"] = f"{reference['provider_voice_id']} (gone at {to})"
        return None
    except ProviderError as exc:
        item["outcome"] = f"error: {to} could not be asked about {reference['provider_voice_id']}: {exc.safe_message}"
        ops.report.add("errors")
        return False
    return reference


async def _apply(ops: Ops, voice: ClonedVoice, reference: dict[str, Any] | None, item: dict[str, Any]) -> str:
    """The voice's `provider_migration` attempt, its waiting jobs and its audit event, in one
    transaction, unless the voice changed since it was planned."""
    to = ops.args.to
    async with ops.transaction(write=True) as conn:
        locked = await portability.lock_voice(conn, voice.id)
        changed = "the voice was deleted meanwhile" if locked is None else await _changed(conn, voice, locked)
        if locked is None or changed is not None:
            ops.report.add("skipped")
            return f"skipped: {changed}"
        try:
            attempt = await portability.reenrol(conn, locked, provider=to, source=SOURCE, reuse=reference)
        except portability.CannotReenrol as refused:
            ops.report.add("no_sample")
            return f"left: {refused.message}"
        await synthesis_jobs.follow_attempt(conn, voice.id, attempt.id)
        await ops.audit(
            conn,
            "voice.migrate",
            "voice",
            voice.id,
            {
                "from": voice.tts_provider,
                "from_provider_voice_id": voice.provider_voice_id,
                "to": to,
                "attempt_id": str(attempt.id),
                "reused": None if reference is None else reference["provider_voice_id"],
                "sample_id": None if attempt.sample_id is None else str(attempt.sample_id),
            },
        )
    item["attempt_id"] = attempt.id
    ops.report.add("moved")
    ops.report.add("reused" if reference is not None else "reenrolled")
    return "attempt queued (reusing the reference)" if reference is not None else "attempt queued (re-enrolling)"


async def _changed(conn: Connection, planned: ClonedVoice, locked: dict[str, Any]) -> str | None:
    """Why the voice may no longer be moved as planned, or None."""
    if locked["deleted_at"] is not None:
        return "the voice was deleted meanwhile"
    if (locked["tts_provider"], locked["provider_voice_id"]) != (planned.tts_provider, planned.provider_voice_id):
        return "the voice changed provider meanwhile"
    if await attempts.open_for_voice(conn, planned.id) is not None:
        return "an attempt started meanwhile"
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m scripts.migrate_voices` / `voicegate ops migrate-voices`."""
    arguments = parser(
        NAME,
        "Move voices to another provider: re-enrol each from its stored consented sample, or take back a "
        "reference the provider still has (a rollback).",
    )
    arguments.add_argument("--to", required=True, choices=PROVIDER_NAMES, help="the provider to move voices to")
    arguments.add_argument(
        "--from", dest="source", choices=PROVIDER_NAMES, help="only voices now on this provider (default: any)"
    )
    arguments.add_argument(
        "--voice", action="append", type=uuid.UUID, metavar="ID", help="only this voice (repeatable)"
    )
    return run(NAME, argv, arguments, COLUMNS, migrate, check=_check)


def _check(args: argparse.Namespace) -> str | None:
    if args.source is not None and args.source == args.to:
        return "--from and --to name the same provider"
    return None


if __name__ == "__main__":
    sys.exit(main())
