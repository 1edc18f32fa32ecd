"""A user's voices: list, get, soft delete (provider-side deletion is an operator action)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from backend.db.execute import fetch_all, fetch_optional
from backend.db.pool import Connection, user_transaction
from backend.db.queries import load_queries
from backend.errors import NotFound

Q = load_queries(Path(__file__).with_suffix(".sql"))
LIST_LIMIT = 200


class Voice(msgspec.Struct):
    """A voice as the `/api/voices` routes return it (snake_case, as the source documents name it)."""

    id: uuid.UUID
    name: str
    language: str | None
    status: str
    tts_provider: str | None
    provider_voice_id: str | None
    provider_target_model: str | None
    provider_voice_kind: str | None
    provider_region: str | None
    provider_request_id: str | None
    provider_metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class VoiceList(msgspec.Struct):
    """The caller's voices, newest first."""

    voices: list[Voice]


async def list_voices(conn: Connection) -> VoiceList:
    """The caller's voices that are not deleted."""
    rows = await fetch_all(conn, Q["list_voices"], {"limit": LIST_LIMIT})
    return VoiceList([msgspec.convert(row, Voice) for row in rows])


async def get_voice(conn: Connection, voice_id: uuid.UUID) -> Voice:
    """One of the caller's voices; another user's is as missing as a non-existent one."""
    row = await fetch_optional(conn, Q["get_voice"], {"id": voice_id})
    if row is None:
        raise NotFound("Voice not found.")
    return msgspec.convert(row, Voice)


async def soft_delete_voice(service_conn: Connection, voice_id: uuid.UUID, owner_id: uuid.UUID) -> None:
    """Hide the voice from its owner. Runs as the service (RLS hides deleted rows, so an owner's own
    UPDATE could not set `deleted_at`); the owner check is in the statement itself."""
    row = await fetch_optional(service_conn, Q["soft_delete_voice"], {"id": voice_id, "owner_id": owner_id})
    if row is None:
        raise NotFound("Voice not found.")


#: Longest `Prefer: wait=N` honoured: a client may ask for more, it gets this.
MAX_WAIT_SECONDS = 60
_FINISHED = frozenset({"ready", "failed"})


def preferred_wait(prefer: str | None) -> int | None:
    """Seconds from an RFC 7240 `Prefer: wait=N` header (capped), None without a valid one."""
    for preference in (prefer or "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "wait" and value.strip().isdigit():
            return min(int(value.strip()), MAX_WAIT_SECONDS)
    return None


async def wait_for_voice(
    pool: AsyncConnectionPool[Connection], claims: Mapping[str, Any], voice_id: uuid.UUID, seconds: int
) -> Voice | None:
    """The voice once it is ready or failed, read under the caller's RLS; None if `seconds` pass first.

    Polls every 200 ms: one indexed read per poll, for at most one waiting request per finalize.
    """
    deadline = time.monotonic() + seconds
    while True:
        async with user_transaction(pool, claims) as conn:
            voice = await get_voice(conn, voice_id)
        if voice.status in _FINISHED:
            return voice
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
