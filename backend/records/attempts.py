"""Clone attempts, the lifecycle's authority: reading attempts, making them, and moving them (the typed row and its
states are `backend.domain.attempts`).

Every state change goes through `voicegate.transition_attempt` (version- and lease-fenced) or, for the
clone step's verified → ready → synced, `voicegate.complete_attempt` (the same moves and events in one
call, lease-fenced), both called only from here; every function takes the caller's connection, so a
move and the message or rows it implies commit together. Inserting an attempt supersedes the
reflection's active one and enqueues `VOICE_CLONE_PROCESS` in SQL (a trigger), whoever inserts it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_one, fetch_optional
from backend.db.queries import load_queries
from backend.domain.attempts import (
    OPEN_STATUSES,
    AttemptRow,
    AttemptSource,
    AttemptStatus,
    PreviewStatus,
    RuntimeStatus,
    SetMember,
    as_row,
)
from backend.errors import NotFound

_Q = load_queries(Path(__file__).with_suffix(".sql"))
#: The open statuses, as the queries take them.
_OPEN = sorted(status.value for status in OPEN_STATUSES)


async def load(conn: Connection, attempt_id: uuid.UUID) -> tuple[AttemptRow, datetime]:
    """The attempt as committed now, with the database's clock (leases expire by that clock).

    NotFound when the attempt does not exist.
    """
    row = await fetch_optional(conn, _Q["load_attempt"], {"attempt_id": attempt_id})
    if row is None:
        raise NotFound(f"attempt {attempt_id} not found")
    observed_at: datetime = row["observed_at"]
    return as_row(row), observed_at


async def lock(conn: Connection, attempt_id: uuid.UUID) -> AttemptRow | None:
    """The attempt, row-locked for the rest of the transaction (operators re-check what they read)."""
    row = await fetch_optional(conn, _Q["lock_attempt"], {"attempt_id": attempt_id})
    return None if row is None else as_row(row)


async def transition(
    conn: Connection,
    attempt: AttemptRow,
    actor: str,
    *,
    status: AttemptStatus | None = None,
    runtime: RuntimeStatus | None = None,
    preview: PreviewStatus | None = None,
    lease_owner: str | None = None,
    changes: dict[str, Any] | None = None,
) -> AttemptRow:
    """Apply one move through the SQL transition function, fenced by `attempt.version` (and the lease
    when `lease_owner` is given); StaleVersion, LeaseLost or IllegalTransition otherwise."""
    row = await fetch_one(
        conn,
        _Q["transition"],
        {
            "attempt_id": attempt.id,
            "version": attempt.version,
            "actor": actor,
            "status": status,
            "runtime_status": runtime,
            "preview_status": preview,
            "lease_owner": lease_owner,
            "changes": json.dumps(changes or {}, default=str),
        },
    )
    return as_row(row)


async def fail(
    conn: Connection, attempt: AttemptRow, actor: str, code: str, message: str, *, lease_owner: str | None = None
) -> AttemptRow:
    """`transition` to `failed`, recording why: a stable code and a message safe to show."""
    changes = {"last_error_code": code, "last_error_message": message}
    return await transition(conn, attempt, actor, status=AttemptStatus.FAILED, lease_owner=lease_owner, changes=changes)


#: The completion of attempts, for `Database.grouped` with `completion`'s items: the attempt as completed.
COMPLETE: Final = _Q["complete_all"]


def completion(
    attempt_id: uuid.UUID, actor: str, *, lease_owner: str, changes: dict[str, Any] | None
) -> dict[str, Any]:
    """`COMPLETE`'s item: the provider confirmed the leased attempt's voice, `processing`/`verifying` → `ready` and,
    for the active attempt, its runtime `syncing` → `synced` (`sync_failed` when the voice row does not carry the
    voice), in one SQL call with one event per move; LeaseLost unless `lease_owner` holds the lease. `changes`: the
    provider's answer (`provider_voice_id`, ...) and the likeness probe's judgement (`likeness`, ...; kept only while
    the attempt has none)."""
    return {"attempt_id": attempt_id, "actor": actor, "lease_owner": lease_owner, "changes": changes or {}}


async def read_and_lease(
    conn: Connection, queue: str, *, vt: int, qty: int, lease_owner: str, lease_seconds: int
) -> list[dict[str, Any]]:
    """Read up to `qty` of `queue`'s messages (invisible for `vt` seconds) and lease each due `queued`
    attempt they name to `lease_owner`, on the caller's transaction: the message rows, each with the
    attempt it leased (`leased`, or None)."""
    return await fetch_all(
        conn,
        _Q["read_and_lease"],
        {"queue": queue, "vt": vt, "qty": qty, "lease_owner": lease_owner, "lease_seconds": lease_seconds},
    )


async def extend_lease(conn: Connection, attempt_id: uuid.UUID, lease_owner: str, seconds: int) -> datetime:
    """Push a held lease's expiry `seconds` into the future (LeaseLost when it is no longer held)."""
    row = await fetch_one(
        conn, _Q["extend_lease"], {"attempt_id": attempt_id, "lease_owner": lease_owner, "seconds": seconds}
    )
    expires: datetime = row["expires_at"]
    return expires


async def create(
    conn: Connection,
    *,
    owner_id: uuid.UUID,
    voice_id: uuid.UUID,
    provider: str,
    source: AttemptSource,
    reflection_id: uuid.UUID | None,
    sample_id: uuid.UUID | None = None,
    preview: bool = False,
    provider_voice_id: str | None = None,
    target_model: str | None = None,
    sample_ids: Sequence[uuid.UUID] = (),
) -> AttemptRow:
    """A new attempt, as the service; `source` says where its provider voice comes from:

    `sample_upload` enrols one from `sample_id`, or from every one of `sample_ids` (its set, in that
    order; `sample_id` is then the first, for the readers of one sample). `custom_voice_id` attaches
    `provider_voice_id`, a voice the user already has at a provider (no preview: its owner has heard it
    there). `provider_migration` (an operator moved the voice) and `provider_churn` (the provider lost
    it) give an existing voice a provider voice again, from `sample_id` or reusing `provider_voice_id`
    (verified, never enrolled again).
    With `preview` its preview must be heard before the launch gate opens; a synthesis job's voice (no
    reflection, no gate) is made without one.
    """
    row = await fetch_one(
        conn,
        _Q["insert_attempt"],
        {
            "owner_id": owner_id,
            "voice_id": voice_id,
            "reflection_id": reflection_id,
            "sample_id": sample_id,
            "provider": provider,
            "source": source,
            "preview": preview,
            "provider_voice_id": provider_voice_id,
            "target_model": target_model,
        },
    )
    attempt = as_row(row)
    if sample_ids:
        params = {"attempt_id": attempt.id, "owner_id": owner_id, "sample_ids": list(sample_ids)}
        await conn.execute(_Q["insert_sample_set"], params)
    return attempt


async def retry(conn: Connection, attempt_id: uuid.UUID) -> AttemptRow:
    """A new attempt copying `attempt_id`'s voice, sample (or sample set), provider and preview rule, as
    the service; inserting it supersedes the old one. The retry route, dead-letter replay and zombie
    re-clone use it."""
    attempt = as_row(await fetch_one(conn, _Q["retry_attempt"], {"attempt_id": attempt_id}))
    await conn.execute(_Q["copy_sample_set"], {"attempt_id": attempt.id, "from_attempt_id": attempt_id})
    return attempt


async def sample_set(conn: Connection, attempt_id: uuid.UUID) -> list[SetMember]:
    """The attempt's samples in the order they are sent; empty for an attempt of one `sample_id`."""
    rows = await fetch_all(conn, _Q["sample_set"], {"attempt_id": attempt_id})
    return [msgspec.convert(row, SetMember) for row in rows]


async def record_measures(conn: Connection, attempt_id: uuid.UUID, member: SetMember) -> None:
    """What the enrolment measured on one sample of the attempt's set."""
    params = msgspec.structs.asdict(member) | {"attempt_id": attempt_id}
    await conn.execute(_Q["record_measures"], params)


async def open_for_voice(
    conn: Connection, voice_id: uuid.UUID, *, besides: uuid.UUID | None = None
) -> AttemptRow | None:
    """The voice's newest attempt still under way, if any (other than `besides`)."""
    row = await fetch_optional(conn, _Q["open_for_voice"], {"voice_id": voice_id, "open": _OPEN, "besides": besides})
    return None if row is None else as_row(row)


async def enrolled_by(conn: Connection, owner_id: uuid.UUID, enrolment_key: str) -> bool:
    """Whether one of `owner_id`'s attempts carries `enrolment_key` (made that provider voice)."""
    found = await fetch_optional(conn, _Q["enrolled_by_owner"], {"owner_id": owner_id, "enrolment_key": enrolment_key})
    return found is not None


async def list_for_reflection(conn: Connection, reflection_id: uuid.UUID, limit: int) -> list[AttemptRow]:
    """The reflection's attempts visible on `conn`, newest first."""
    rows = await fetch_all(conn, _Q["list_for_reflection"], {"reflection_id": reflection_id, "limit": limit})
    return [as_row(row) for row in rows]


async def get(conn: Connection, attempt_id: uuid.UUID) -> AttemptRow:
    """The attempt, as visible on `conn` (a user's connection sees only their own); NotFound otherwise."""
    row = await fetch_optional(conn, _Q["get_attempt"], {"attempt_id": attempt_id})
    if row is None:
        raise NotFound("Attempt not found.")
    return as_row(row)


async def get_for_reflection(conn: Connection, reflection_id: uuid.UUID, attempt_id: uuid.UUID) -> AttemptRow:
    """One attempt of the reflection, as visible on `conn`; NotFound otherwise."""
    row = await fetch_optional(
        conn, _Q["get_for_reflection"], {"reflection_id": reflection_id, "attempt_id": attempt_id}
    )
    if row is None:
        raise NotFound("Attempt not found.")
    return as_row(row)


async def active_for_reflection(conn: Connection, reflection_id: uuid.UUID) -> AttemptRow | None:
    """The reflection's active attempt, as visible on `conn`."""
    row = await fetch_optional(conn, _Q["active_for_reflection"], {"reflection_id": reflection_id})
    return None if row is None else as_row(row)


async def count_by_status(conn: Connection) -> dict[AttemptStatus, int]:
    """How many attempts stand in each state (a state none stands in is missing)."""
    return {AttemptStatus(row["status"]): row["n"] for row in await fetch_all(conn, _Q["count_by_status"], {})}


async def lease_counts(conn: Connection) -> tuple[int, int]:
    """How many processing or verifying attempts hold a lease past its end (stale: their worker stopped
    renewing it), and how many a live one."""
    row = await fetch_one(conn, _Q["lease_counts"], {})
    return row["stale_leases"], row["live_leases"]
