"""`voicegate ops reconcile-provider-voices`: compare the voices each configured provider holds with
the attempts and voice rows that record them.

Findings, per provider:
  * orphan: a voice voicegate made (it carries an enrolment-key tag) that no attempt or voice row
    records, e.g. the database write failed after the provider's create. `--adopt` records it on the
    attempt whose enrolment key it carries, when that attempt has no provider voice yet and no worker
    holds it; `--delete-orphans` deletes one that no attempt's key matches, once it is older than
    `--grace`. Voices without a tag were not made by voicegate and are never touched.
  * zombie: an active `ready` attempt, or a live `ready` voice row, whose provider voice is gone.
    `--reclone-zombies` starts a new attempt from the same sample, as the retry route does (the old
    one is superseded, so nobody launches a voice that cannot speak).
  * model mismatch: the provider binds a voice to another target model than the database records
    (Qwen); synthesis with the recorded model would fail. `--fix-models` records the provider's model
    on the active attempt through a transition, which republishes the mirror and voice row.
Every fix needs --apply, re-checks under the row lock in its own transaction, and writes an audit
event there (a provider deletion happens inside that transaction, just before it commits).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from backend.providers.base import ProviderVoice, VoiceProvider
from backend.providers.config import PROVIDER_NAMES, key_variable
from backend.providers.enrolment import KeyTag, key_tag
from backend.providers.errors import ProviderError, VoiceNotFoundError
from backend.records import attempts, provider_voices
from backend.records.provider_voices import AttemptRef, KeyedAttempt, VoiceRef
from scripts._common import Ops, chunks, duration, parser, run

NAME = "reconcile-provider-voices"
log = logging.getLogger("voicegate.ops")
COLUMNS = ["provider", "provider_voice_id", "finding", "attempt_id", "voice_id", "detail", "outcome"]
DEFAULT_GRACE = timedelta(hours=24)
_QWEN_TIME = "%Y-%m-%d %H:%M:%S"


def created_at(voice: ProviderVoice) -> datetime | None:
    """When the provider made the voice: ISO 8601 (Cartesia), Unix seconds (ElevenLabs) or
    `YYYY-MM-DD HH:MM:SS` (DashScope, zone undocumented: read as UTC, which makes a voice from a
    UTC+ region look younger, never older, so the grace period is never cut short). None if unknown."""
    raw = (voice.created_at or "").strip()
    if not raw:
        return None
    try:
        if raw.isdigit():
            return datetime.fromtimestamp(int(raw), UTC)
        parsed = (
            datetime.strptime(raw, _QWEN_TIME) if len(raw) == 19 and raw[10] == " " else datetime.fromisoformat(raw)
        )
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Refs:
    """The database rows that record one provider voice."""

    attempts: list[AttemptRef] = field(default_factory=list)
    voices: list[VoiceRef] = field(default_factory=list)


async def reconcile(ops: Ops) -> None:
    """Check every chosen provider in turn."""
    report = ops.report
    for name in (
        "providers_checked",
        "provider_voices",
        "foreign_voices",
        "problems",
        "orphans",
        "orphans_pending",
        "zombies",
        "model_mismatches",
        "provider_errors",
        "adopted",
        "deleted",
        "recloned",
        "models_fixed",
        "skipped",
    ):
        report.counts[name] = 0
    for name, provider in await _providers(ops):
        try:
            voices = list(await provider.list())
        except Exception as exc:
            # One provider that cannot be listed (down, refusing the key, a bad stored voice)
            # must not keep the others from being checked.
            log.warning("listing %s voices failed", name, exc_info=exc)
            report.add("provider_errors")
            report.add("problems")
            report.notes.append(f"{name}: listing failed: {exc}")
            continue
        report.add("providers_checked")
        report.add("provider_voices", len(voices))
        report.notes.append(f"{name}: {len(voices)} voice(s) listed")
        await _check_provider(ops, name, provider, voices)
    report.counts["fixed"] = sum(report.counts[k] for k in ("adopted", "deleted", "recloned", "models_fixed"))
    report.counts["unfixed"] = report.counts["problems"] - report.counts["fixed"] - report.counts["skipped"]


async def _providers(ops: Ops) -> list[tuple[str, VoiceProvider]]:
    """The adapters to check: the chosen (default: every) provider that is configured."""
    settings = ops.settings.providers
    if settings is None:
        raise RuntimeError("settings_from_env always reads provider settings")
    chosen: Sequence[str] = ops.args.provider or PROVIDER_NAMES
    providers = await ops.run.providers()
    built: list[tuple[str, VoiceProvider]] = []
    for name in chosen:
        if not settings.has_key(name):
            ops.report.notes.append(f"{name}: not configured ({key_variable(name)} unset), not checked")
            continue
        built.append((name, providers.get(name)))
    return built


async def _check_provider(ops: Ops, name: str, provider: VoiceProvider, voices: list[ProviderVoice]) -> None:
    by_id = {voice.voice_id: voice for voice in voices}
    with ops.progress.task(f"{name} voices", len(voices)) as advance:
        referenced: set[str] = set()
        for ids in chunks(list(by_id), ops.batch_size):
            async with ops.transaction() as conn:
                referenced |= await provider_voices.referenced(conn, name, ids)
            advance(len(ids))
    unrecorded = [voice for voice in voices if voice.voice_id not in referenced]
    ours: list[tuple[ProviderVoice, KeyTag]] = []
    for voice in unrecorded:
        tag = key_tag(voice)
        if tag is None:
            ops.report.add("foreign_voices")
            Finding(name, voice.voice_id, "foreign", "no voicegate tag: not made by voicegate").report(
                ops, "left alone"
            )
        else:
            ours.append((voice, tag))
    await _orphans(ops, name, provider, ours)
    await _recorded(ops, name, by_id)


async def _matching_attempts(ops: Ops, name: str, tags: list[KeyTag]) -> list[KeyedAttempt]:
    found: list[KeyedAttempt] = []
    for prefixes in chunks(sorted({tag.prefix for tag in tags}), ops.batch_size):
        async with ops.transaction() as conn:
            found += await provider_voices.attempts_by_key_prefix(conn, name, prefixes)
    return found


async def _orphans(ops: Ops, name: str, provider: VoiceProvider, ours: list[tuple[ProviderVoice, KeyTag]]) -> None:
    candidates = await _matching_attempts(ops, name, [tag for _, tag in ours]) if ours else []
    now = datetime.now(UTC)
    grace: timedelta = ops.args.grace
    for voice, tag in ours:
        attempt = next((a for a in candidates if tag.matches(a.enrolment_key)), None)
        report = ops.report
        if attempt is not None and attempt.in_flight:
            report.add("orphans_pending")
            detail = "a worker holds its attempt now and will record it"
            Finding(name, voice.voice_id, "orphan (in flight)", detail, attempt.id).report(ops, "left alone")
            continue
        if attempt is None:
            made = created_at(voice)
            age = now - made if made else None
            if age is not None and age < grace:
                report.add("orphans_pending")
                detail = f"no attempt has its key; {_hours(age)} old, within the {_hours(grace)} grace period"
                Finding(name, voice.voice_id, "orphan (in grace)", detail).report(ops, "left alone")
                continue
            report.add("orphans")
            report.add("problems")
            age_text = f"{_hours(age)} old" if age is not None else "age unknown, so never deleted"
            found = Finding(name, voice.voice_id, "orphan", f"no attempt has its key; {age_text}")
            if age is None:
                found.report(ops, "left (needs a person)")
            elif not ops.args.delete_orphans:
                found.report(ops, "left (use --delete-orphans)")
            elif not ops.apply:
                found.report(ops, "would delete")
            else:
                found.report(ops, await _delete(ops, name, provider, voice, tag))
            continue
        report.add("orphans")
        report.add("problems")
        if attempt.provider_voice_id is not None:
            detail = f"its attempt records another voice, {attempt.provider_voice_id}"
            Finding(name, voice.voice_id, "orphan", detail, attempt.id).report(ops, "left (duplicate: needs a person)")
            continue
        found = Finding(name, voice.voice_id, "orphan", "its attempt has no provider voice: adoptable", attempt.id)
        if not ops.args.adopt:
            found.report(ops, "left (use --adopt)")
        elif not ops.apply:
            found.report(ops, "would adopt")
        else:
            found.report(ops, await _adopt(ops, attempt, voice))


async def _adopt(ops: Ops, attempt: KeyedAttempt, voice: ProviderVoice) -> str:
    """Record the voice on its attempt, unless the attempt changed since it was read."""
    async with ops.transaction(write=True) as conn:
        current = await attempts.lock(conn, attempt.id)
        if current is None or current.version != attempt.version or current.provider_voice_id is not None:
            ops.report.add("skipped")
            return "skipped: the attempt changed meanwhile"
        metadata = {**voice.metadata, "adopted": {"by": ops.actor, "run_id": str(ops.run_id)}}
        changes = {
            "provider_voice_id": voice.voice_id,
            "provider_target_model": voice.target_model,
            "provider_metadata": metadata,
        }
        await attempts.transition(conn, current, ops.actor, changes=changes)
        await ops.audit(
            conn,
            "provider_voice.adopt",
            "attempt",
            current.id,
            {"provider": voice.provider, "provider_voice_id": voice.voice_id, "target_model": voice.target_model},
        )
    ops.report.add("adopted")
    return "adopted"


async def _delete(ops: Ops, name: str, provider: VoiceProvider, voice: ProviderVoice, tag: KeyTag) -> str:
    """Delete an orphan at the provider after checking, in the audit event's transaction, that no row
    and no attempt's key has claimed it meanwhile; a failed deletion rolls the audit event back."""
    try:
        async with ops.transaction(write=True) as conn:
            claimed = await provider_voices.referenced(conn, name, [voice.voice_id])
            keyed = await provider_voices.attempts_by_key_prefix(conn, name, [tag.prefix])
            if claimed or any(tag.matches(row.enrolment_key) for row in keyed):
                ops.report.add("skipped")
                return "skipped: recorded meanwhile"
            await ops.audit(
                conn,
                "provider_voice.delete",
                "provider_voice",
                f"{name}:{voice.voice_id}",
                {"provider": name, "provider_voice_id": voice.voice_id, "created_at": voice.created_at},
            )
            await provider.delete(voice.voice_id)
    except VoiceNotFoundError:
        ops.report.add("skipped")
        return "skipped: already gone at the provider"
    except ProviderError as exc:
        ops.report.add("provider_errors")
        return f"error: {exc}"
    ops.report.add("deleted")
    return "deleted"


async def _recorded(ops: Ops, name: str, by_id: dict[str, ProviderVoice]) -> None:
    """Zombies and model mismatches among the rows that record a voice of this provider."""
    zombies: dict[str, Refs] = {}
    mismatches: dict[str, Refs] = {}
    for read, kind in ((provider_voices.active_attempt_refs, "attempts"), (provider_voices.live_voice_refs, "voices")):
        after = None
        while True:
            async with ops.transaction() as conn:
                rows: Sequence[AttemptRef | VoiceRef] = await read(conn, name, after=after, limit=ops.batch_size)
            for row in rows:
                voice = by_id.get(row.provider_voice_id)
                if voice is None and row.status == "ready":
                    getattr(zombies.setdefault(row.provider_voice_id, Refs()), kind).append(row)
                elif (
                    voice is not None
                    and voice.target_model is not None
                    and row.provider_target_model != voice.target_model
                ):
                    getattr(mismatches.setdefault(row.provider_voice_id, Refs()), kind).append(row)
            if len(rows) < ops.batch_size:
                break
            after = rows[-1].id
    for voice_id, refs in zombies.items():
        await _zombie(ops, name, voice_id, refs)
    for voice_id, refs in mismatches.items():
        await _mismatch(ops, name, by_id[voice_id], refs)


async def _zombie(ops: Ops, name: str, voice_id: str, refs: Refs) -> None:
    report = ops.report
    report.add("zombies")
    report.add("problems")
    fixable = [a for a in refs.attempts if a.reflection_id is not None]
    covered = {a.voice_id for a in fixable}
    stuck = [a for a in refs.attempts if a.reflection_id is None] + [v for v in refs.voices if v.id not in covered]
    first = refs.attempts[0] if refs.attempts else None
    voice_row = refs.voices[0].id if refs.voices else (first.voice_id if first else None)
    detail = (
        f"gone at the provider; recorded by {len(refs.attempts)} active attempt(s), {len(refs.voices)} voice row(s)"
    )
    found = Finding(name, voice_id, "zombie", detail, first.id if first else None, voice_row)
    if stuck or not fixable:
        found.report(ops, "left (no reflection to re-clone: needs a person)")
    elif not ops.args.reclone_zombies:
        found.report(ops, "left (use --reclone-zombies)")
    elif not ops.apply:
        found.report(ops, "would re-clone")
    else:
        outcomes = [await _reclone(ops, attempt) for attempt in fixable]
        report.add("recloned" if all(outcome.startswith("re-cloned") for outcome in outcomes) else "skipped")
        found.report(ops, "; ".join(outcomes))


async def _reclone(ops: Ops, attempt: AttemptRef) -> str:
    """A new attempt copying the zombie one (the retry route's insert), superseding it."""
    async with ops.transaction(write=True) as conn:
        current = await attempts.lock(conn, attempt.id)
        if current is None or current.version != attempt.version or not current.is_active:
            return "skipped: the attempt changed meanwhile"
        new = await attempts.retry(conn, current.id)
        await ops.audit(
            conn,
            "attempt.reclone",
            "attempt",
            attempt.id,
            {"new_attempt_id": str(new.id), "provider_voice_id": attempt.provider_voice_id, "reason": "zombie"},
        )
    return f"re-cloned as attempt {new.id}"


async def _mismatch(ops: Ops, name: str, voice: ProviderVoice, refs: Refs) -> None:
    report = ops.report
    report.add("model_mismatches")
    report.add("problems")
    rows: list[AttemptRef | VoiceRef] = [*refs.attempts, *refs.voices]
    recorded = sorted({str(row.provider_target_model) for row in rows})
    detail = f"provider: {voice.target_model}; database: {', '.join(recorded)}"
    attempts = refs.attempts
    covered = {a.voice_id for a in attempts}
    stuck = [v for v in refs.voices if v.id not in covered]
    attempt_id = attempts[0].id if attempts else None
    found = Finding(
        name, voice.voice_id, "model mismatch", detail, attempt_id, refs.voices[0].id if refs.voices else None
    )
    if stuck or not attempts:
        found.report(ops, "left (no active attempt: needs a person)")
    elif not ops.args.fix_models:
        found.report(ops, "left (use --fix-models)")
    elif not ops.apply:
        found.report(ops, "would fix")
    else:
        outcomes = [await _fix_model(ops, attempt, voice) for attempt in attempts]
        report.add("models_fixed" if all(o == "fixed" for o in outcomes) else "skipped")
        found.report(ops, "; ".join(outcomes))


async def _fix_model(ops: Ops, attempt: AttemptRef, voice: ProviderVoice) -> str:
    async with ops.transaction(write=True) as conn:
        current = await attempts.lock(conn, attempt.id)
        if current is None or current.version != attempt.version or not current.is_active:
            return "skipped: the attempt changed meanwhile"
        await attempts.transition(conn, current, ops.actor, changes={"provider_target_model": voice.target_model})
        await ops.audit(
            conn,
            "attempt.fix_target_model",
            "attempt",
            attempt.id,
            {"provider_voice_id": voice.voice_id, "from": current.provider_target_model, "to": voice.target_model},
        )
    return "fixed"


@dataclass(frozen=True)
class Finding:
    """One row of the details table."""

    provider: str
    provider_voice_id: str
    finding: str
    detail: str
    attempt_id: object = None
    voice_id: object = None

    def report(self, ops: Ops, outcome: str) -> None:
        """Add this finding, with what became of it, to the run's items."""
        ops.report.items.append({**{column: getattr(self, column) for column in COLUMNS[:-1]}, "outcome": outcome})


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:.1f} h"


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m scripts.reconcile_provider_voices` / `voicegate ops reconcile-provider-voices`."""
    arguments = parser(NAME, "Match provider voices with attempts and voices: orphans, zombies, model mismatches.")
    arguments.add_argument(
        "--provider", action="append", choices=PROVIDER_NAMES, help="check only this provider (repeatable)"
    )
    arguments.add_argument("--adopt", action="store_true", help="record each adoptable orphan on its attempt")
    arguments.add_argument(
        "--delete-orphans", action="store_true", help="delete orphans no attempt's key matches, once past --grace"
    )
    arguments.add_argument(
        "--grace",
        type=duration,
        default=DEFAULT_GRACE,
        metavar="DURATION",
        help="how old an unmatched orphan must be before it may be deleted (default 24h)",
    )
    arguments.add_argument(
        "--reclone-zombies", action="store_true", help="start a new attempt for each zombie (as the retry route does)"
    )
    arguments.add_argument(
        "--fix-models", action="store_true", help="record the provider's target model on mismatched active attempts"
    )
    return run(NAME, argv, arguments, COLUMNS, reconcile, check=_check)


def _check(args: argparse.Namespace) -> str | None:
    if args.grace < timedelta(0):
        return "--grace must not be negative"
    return None


if __name__ == "__main__":
    sys.exit(main())
