"""Local voices kept in Postgres (`voicegate.local_voices`): they survive restarts and are shared by
every worker, as an account at a remote provider would be."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import Database
from backend.providers.local.provider import LocalVoice

_Q = load_queries(Path(__file__).with_suffix(".sql"))


class PostgresProfileStore:
    """A `ProfileStore` in the database, as the service."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, voice_id: str) -> LocalVoice | None:
        """The stored voice, or ``None``."""
        # With the lookups a worker's other attempts make at the same moment, in one statement.
        [rows] = await self._db.grouped((_Q["get_voices"],), {"voice_id": voice_id})
        return msgspec.convert(rows[0], LocalVoice) if rows else None

    async def put(self, voice: LocalVoice) -> None:
        """Store or replace a voice."""
        profile = msgspec.json.encode(voice.profile).decode()
        async with self._db.service_transaction() as conn:
            await conn.execute(_Q["put_voice"], {**msgspec.structs.asdict(voice), "profile": profile})

    async def delete(self, voice_id: str) -> bool:
        """Remove a voice; ``False`` when it was not there."""
        async with self._db.service_transaction() as conn:
            return await fetch_optional(conn, _Q["delete_voice"], {"voice_id": voice_id}) is not None

    async def all(self) -> Sequence[LocalVoice]:
        """Every stored voice."""
        async with self._db.service_transaction() as conn:
            return [msgspec.convert(row, LocalVoice) for row in await fetch_all(conn, _Q["all_voices"], {})]
