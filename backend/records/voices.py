"""`public.voices`: the row, its status, and the reads of whole rows other areas make."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from backend.db.connection import Connection
from backend.db.execute import fetch_one, fetch_optional
from backend.db.queries import load_queries
from backend.records.rows import fetch_optional_record, fetch_record, fetch_records

_Q = load_queries(Path(__file__).with_suffix(".sql"))


class VoiceStatus(enum.StrEnum):
    """`voices.status`, exactly its CHECK constraint's values."""

    DRAFT = "draft"
    CLONING = "cloning"
    READY = "ready"
    FAILED = "failed"


class VoiceRow(msgspec.Struct, frozen=True, kw_only=True):
    """A whole `voices` row. Its provider fields are published by the clone attempt lifecycle in SQL."""

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    language: str | None
    status: VoiceStatus
    tts_provider: str | None
    provider_voice_id: str | None
    provider_target_model: str | None
    provider_voice_kind: str | None
    provider_region: str | None
    provider_request_id: str | None
    provider_metadata: dict[str, Any]
    consent_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


async def voice_row(conn: Connection, voice_id: uuid.UUID) -> VoiceRow:
    """The voice's row as `conn` sees it (the service sees every row; a user, under RLS, their own)."""
    return await fetch_record(conn, _Q["voice_row"], {"voice_id": voice_id}, VoiceRow)


async def lock_live(conn: Connection, voice_id: uuid.UUID, owner_id: uuid.UUID) -> VoiceRow | None:
    """The owner's voice, not deleted, row-locked as the service; None if there is none."""
    return await fetch_optional_record(conn, _Q["lock_live"], {"id": voice_id, "owner_id": owner_id}, VoiceRow)


async def consent_of(conn: Connection, voice_id: uuid.UUID) -> tuple[uuid.UUID | None, str | None]:
    """The consent record a voice was cloned under and the version of the text it accepted (None, None for
    a voice attached from the owner's own account at a provider)."""
    row = await fetch_optional(conn, _Q["voice_consent"], {"voice_id": voice_id})
    if row is None:
        return None, None
    return row["consent_id"], row["consent_version"]


class ClonedVoice(msgspec.Struct, frozen=True, kw_only=True):
    """A live voice that has been cloned: who owns it, and the provider voice it speaks with."""

    id: uuid.UUID
    owner_id: uuid.UUID
    status: VoiceStatus
    tts_provider: str
    provider_voice_id: str | None
    provider_target_model: str | None


async def count_cloned(conn: Connection, *, source: str | None, ids: list[uuid.UUID] | None) -> int:
    """How many live voices have been cloned: on provider `source` and among `ids`, each when given."""
    return int((await fetch_one(conn, _Q["count_cloned"], {"source": source, "ids": ids}))["n"])


async def cloned(
    conn: Connection, *, source: str | None, ids: list[uuid.UUID] | None, after: uuid.UUID | None, limit: int
) -> list[ClonedVoice]:
    """Up to `limit` of `count_cloned`'s voices after `after` (from the first when None), by id."""
    params = {"source": source, "ids": ids, "after": after, "limit": limit}
    return await fetch_records(conn, _Q["cloned"], params, ClonedVoice)
