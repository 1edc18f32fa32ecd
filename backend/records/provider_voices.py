"""Which attempts and voice rows record which provider voices, read to reconcile them with what each
provider holds: the ids some row records, the attempts an enrolment-key tag points to, and the active
attempts and live voices that name a provider voice."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec

from backend.db.connection import Connection
from backend.db.execute import fetch_all
from backend.db.queries import load_queries
from backend.records.rows import fetch_records

_Q = load_queries(Path(__file__).with_suffix(".sql"))


class KeyedAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """An attempt found by its enrolment key's hash; `in_flight`: a worker holds its lease now."""

    id: uuid.UUID
    status: str
    is_active: bool
    reflection_id: uuid.UUID | None
    enrolment_key: str
    provider_voice_id: str | None
    version: int
    in_flight: bool


class AttemptRef(msgspec.Struct, frozen=True, kw_only=True):
    """An active attempt that records a provider voice."""

    id: uuid.UUID
    reflection_id: uuid.UUID | None
    voice_id: uuid.UUID
    status: str
    version: int
    provider_voice_id: str
    provider_target_model: str | None


class VoiceRef(msgspec.Struct, frozen=True, kw_only=True):
    """A live voice row that records a provider voice."""

    id: uuid.UUID
    status: str
    provider_voice_id: str
    provider_target_model: str | None


async def referenced(conn: Connection, provider: str, ids: list[str]) -> set[str]:
    """Those of the provider voice `ids` of `provider` that some attempt or voice row (deleted or not)
    records."""
    rows = await fetch_all(conn, _Q["referenced_voice_ids"], {"provider": provider, "ids": ids})
    return {row["provider_voice_id"] for row in rows}


async def attempts_by_key_prefix(conn: Connection, provider: str, prefixes: list[str]) -> list[KeyedAttempt]:
    """The attempts on `provider` whose enrolment key's sha256 (hex) starts with one of `prefixes` (14
    characters each); the caller checks the full tag."""
    return await fetch_records(
        conn, _Q["attempts_by_key_prefix"], {"provider": provider, "prefixes": prefixes}, KeyedAttempt
    )


async def active_attempt_refs(
    conn: Connection, provider: str, *, after: uuid.UUID | None, limit: int
) -> list[AttemptRef]:
    """Up to `limit` active attempts on `provider` that record a provider voice, by id after `after`."""
    params = {"provider": provider, "after": after, "limit": limit}
    return await fetch_records(conn, _Q["active_attempt_refs"], params, AttemptRef)


async def live_voice_refs(conn: Connection, provider: str, *, after: uuid.UUID | None, limit: int) -> list[VoiceRef]:
    """Up to `limit` live voices on `provider` that record a provider voice, by id after `after`."""
    params = {"provider": provider, "after": after, "limit": limit}
    return await fetch_records(conn, _Q["live_voice_refs"], params, VoiceRef)
