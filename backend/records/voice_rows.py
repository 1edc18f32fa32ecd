"""`public.voices`: the row, its status, and the reads of whole rows other areas make."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import psycopg

from backend.db.connection import Connection
from backend.db.execute import fetch_one, fetch_optional
from backend.db.queries import load_queries
from backend.domain.voices import VoiceRow, VoiceStatus
from backend.errors import VoiceNameTaken
from backend.records.rows import fetch_optional_record, fetch_record, fetch_records

_Q = load_queries(Path(__file__).with_suffix(".sql"))

#: The unique index under which each of an owner's live voices has a name of its own, compared without case or
#: outer spaces (migration 20261126042000_voice_names_unique).
NAME_INDEX = "voices_owner_name_uidx"


async def voice_row(conn: Connection, voice_id: uuid.UUID) -> VoiceRow:
    """The voice's row as `conn` sees it (the service sees every row; a user, under RLS, their own)."""
    return await fetch_record(conn, _Q["voice_row"], {"voice_id": voice_id}, VoiceRow)


async def visible_row(conn: Connection, voice_id: uuid.UUID) -> VoiceRow | None:
    """The voice's row if it is the caller's and not deleted (on a user transaction), else None: `visible` and
    `voice_row` in one round trip."""
    return await fetch_optional_record(conn, _Q["visible_voice_row"], {"id": voice_id}, VoiceRow)


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


class VoiceName(msgspec.Struct, frozen=True):
    """What a new voice is called: `text` as the caller gave it (`given`: one of their live voices having it
    already refuses it, VoiceNameTaken), or as voicegate chose it from what it was made of (made distinct with
    `unused_name`, never refused for it)."""

    text: str
    given: bool


@contextmanager
def name_of_its_own(name: str) -> Iterator[None]:
    """VoiceNameTaken, naming `name`, for a write in it that gives a voice the name another live voice of its
    owner has; other errors pass as they are."""
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name != NAME_INDEX:
            raise
        raise VoiceNameTaken(name) from exc


async def unused_name(conn: Connection, owner_id: uuid.UUID, name: str) -> str:
    """`name`, else the first of `name (2)`, `name (3)`… that none of the owner's live voices has (as the page
    names a file given twice), cut to fit the 200 characters a name may have."""
    row = await fetch_one(conn, _Q["unused_name"], {"owner_id": owner_id, "name": name.strip()})
    free: str = row["name"]
    return free


async def visible(conn: Connection, voice_id: uuid.UUID) -> bool:
    """Whether the voice is the caller's and not deleted (on a user transaction)."""
    return await fetch_optional(conn, _Q["visible_voice"], {"id": voice_id}) is not None
