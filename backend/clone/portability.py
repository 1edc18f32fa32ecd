"""A voice outlives its provider voices: every reference it has had is kept
(`voice_provider_references`), and it can be given a provider voice again from its stored consented
sample, as an ordinary attempt. Two callers:

  * `voicegate ops migrate-voices` moves voices to another provider (`provider_migration`); moving
    back reuses the old reference when that provider still has it, instead of enrolling again;
  * `heal`, when synthesis or verification meets a voice its provider no longer has, or a retired
    model (`provider_churn`): once per loss, and a clear refusal when no sample remains.

The attempt made here is like any other: it supersedes its reflection's active attempt, so the mirror
and the launch gate follow it, and it publishes to the voice row as it goes.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Final

from backend.clone.start import Reenrolment, start_clone
from backend.db.audit import record_audit
from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.domain.attempts import AttemptRow, AttemptSource
from backend.records import attempts

_Q = load_queries(Path(__file__).with_suffix(".sql"))

#: Why a provider voice is no longer usable, as `voice_provider_references.gone_reason` records it.
GONE_REASONS: Final = frozenset({"voice_not_found", "model_retired"})
NO_SAMPLE: Final = (
    "no stored sample remains to enrol this voice again (samples are deleted after the retention period "
    "unless their owner chose to keep them for moving the voice); upload a new sample"
)


class CannotReenrol(Exception):
    """The voice cannot be given a provider voice again: a stable code and a message safe to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def stored_sample(conn: Connection, voice_id: uuid.UUID) -> uuid.UUID | None:
    """The newest sample of the voice that can still be enrolled: its own or one an attempt of it used,
    not refused, with its original or (for a kept sample) its cleaned copy."""
    row = await fetch_optional(conn, _Q["stored_sample"], {"voice_id": voice_id})
    return None if row is None else row["id"]


async def live_reference(conn: Connection, voice_id: uuid.UUID, provider: str) -> dict[str, Any] | None:
    """The voice's newest reference at `provider` not known to be gone."""
    return await fetch_optional(conn, _Q["live_reference"], {"voice_id": voice_id, "provider": provider})


async def mark_gone(conn: Connection, voice_id: uuid.UUID, provider: str, provider_voice_id: str, reason: str) -> None:
    """Record that `provider` no longer has the voice's reference `provider_voice_id` (or its model)."""
    if reason not in GONE_REASONS:
        raise ValueError(f"unknown reason {reason!r}")
    await conn.execute(
        _Q["mark_gone"],
        {"voice_id": voice_id, "provider": provider, "provider_voice_id": provider_voice_id, "reason": reason},
    )


async def reflection_of(conn: Connection, voice_id: uuid.UUID) -> uuid.UUID | None:
    """The reflection whose active attempt speaks with this voice, if any (its gate follows the voice)."""
    row = await fetch_optional(conn, _Q["reflection_of"], {"voice_id": voice_id})
    return None if row is None else row["reflection_id"]


async def lock_voice(conn: Connection, voice_id: uuid.UUID) -> dict[str, Any] | None:
    """The voice row, locked: one re-enrolment of a voice at a time."""
    return await fetch_optional(conn, _Q["lock_voice"], {"voice_id": voice_id})


async def reenrol(
    conn: Connection,
    voice: dict[str, Any],
    *,
    provider: str,
    source: AttemptSource,
    reuse: dict[str, Any] | None = None,
) -> AttemptRow:
    """An attempt giving `voice` (its locked row) a provider voice at `provider`: reusing the reference
    `reuse`, else enrolling from the stored sample (CannotReenrol `sample_missing` without one).

    With a reflection the new voice needs a preview before the launch gate opens again, as any clone
    does; a re-enrolment forced by churn does not (same sample, same provider, already heard). A voice
    made from several samples is enrolled again from those of its set that are still stored."""
    sample = await stored_sample(conn, voice["id"])
    kept_set = tuple(row["id"] for row in await fetch_all(conn, _Q["stored_set"], {"voice_id": voice["id"]}))
    if reuse is None and sample is None and not kept_set:
        raise CannotReenrol("sample_missing", f"The voice cannot be enrolled again: {NO_SAMPLE}.")
    reflection = await reflection_of(conn, voice["id"])
    reenrolment = Reenrolment(
        voice_id=voice["id"],
        provider=provider,
        kind=source,
        sample_id=kept_set[0] if kept_set else sample,
        sample_ids=() if reuse is not None else kept_set,
        reflection_id=reflection,
        preview=reflection is not None and source != AttemptSource.PROVIDER_CHURN,
        provider_voice_id=None if reuse is None else reuse["provider_voice_id"],
        target_model=None if reuse is None else reuse["target_model"],
    )
    return await start_clone(conn, voice["owner_id"], reenrolment)


async def heal(
    conn: Connection,
    voice_id: uuid.UUID,
    *,
    provider: str,
    provider_voice_id: str,
    reason: str,
    actor: str,
    replacing: uuid.UUID | None = None,
) -> AttemptRow:
    """Enrol the voice again at `provider` from its stored sample, because the provider no longer has
    `provider_voice_id` (`reason`: `voice_not_found` or `model_retired`); in the caller's transaction.

    A re-enrolment already under way (other than `replacing`, the attempt that found the loss) is
    returned instead of starting another. CannotReenrol: the voice was deleted, or no sample remains.
    """
    voice = await lock_voice(conn, voice_id)
    if voice is None or voice["deleted_at"] is not None:
        raise CannotReenrol("voice_deleted", "The voice was deleted.")
    under_way = await attempts.open_for_voice(conn, voice_id, besides=replacing)
    if under_way is not None:
        return under_way
    await mark_gone(conn, voice_id, provider, provider_voice_id, reason)
    attempt = await reenrol(conn, voice, provider=provider, source=AttemptSource.PROVIDER_CHURN)
    await record_audit(
        conn,
        actor,
        "voice.reenrol",
        "voice",
        voice_id,
        detail={
            "reason": reason,
            "provider": provider,
            "lost_provider_voice_id": provider_voice_id,
            "attempt_id": str(attempt.id),
            "sample_id": None if attempt.sample_id is None else str(attempt.sample_id),
        },
    )
    return attempt
