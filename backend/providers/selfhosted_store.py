"""Where the `selfhosted` provider keeps a voice when its server has no voice registry: the cleaned
reference and its transcript, sent with every synthesis. In Postgres (`voicegate.selfhosted_voices`)
so every worker sees them and they survive restarts, as an account at a remote provider would; in
memory for adapter tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import msgspec

from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import Database

_Q = load_queries(Path(__file__).with_suffix(".sql"))


class InlineEntry(msgspec.Struct, frozen=True, kw_only=True):
    """What a listing says of an inline voice: its id, the key that made it, its name and language."""

    voice_id: str
    enrolment_key: str
    name: str
    language: str | None


class InlineVoice(InlineEntry, frozen=True, kw_only=True):
    """One inline voice with the reference sent with each synthesis: the audio and its transcript."""

    ref_text: str | None
    audio: bytes
    mime_type: str


class ReferenceStore(Protocol):
    """Inline voices by id and by enrolment key."""

    async def get(self, voice_id: str) -> InlineVoice | None:
        """The stored voice, or ``None``."""
        ...

    async def put(self, voice: InlineVoice) -> InlineVoice:
        """Store a voice; the one already stored under its id or key wins (what a create adopts)."""
        ...

    async def delete(self, voice_id: str) -> bool:
        """Remove a voice; ``False`` when it was not there."""
        ...

    async def entries(self) -> Sequence[InlineEntry]:
        """Every stored voice, without its audio."""
        ...


class InMemoryReferenceStore:
    """A dict: lost with the process (adapter tests)."""

    def __init__(self) -> None:
        self.voices: dict[str, InlineVoice] = {}

    async def get(self, voice_id: str) -> InlineVoice | None:
        """The stored voice, or ``None``."""
        return self.voices.get(voice_id)

    async def put(self, voice: InlineVoice) -> InlineVoice:
        """Store a voice; the one already stored under its id wins."""
        return self.voices.setdefault(voice.voice_id, voice)

    async def delete(self, voice_id: str) -> bool:
        """Remove a voice; ``False`` when it was not there."""
        return self.voices.pop(voice_id, None) is not None

    async def entries(self) -> Sequence[InlineEntry]:
        """Every stored voice, without its audio."""
        return [msgspec.convert(v, InlineEntry, from_attributes=True) for v in self.voices.values()]


class PostgresReferenceStore:
    """A `ReferenceStore` in the database, as the service."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, voice_id: str) -> InlineVoice | None:
        """The stored voice, or ``None``."""
        async with self._db.service_transaction() as conn:
            row = await fetch_optional(conn, _Q["get_voice"], {"voice_id": voice_id})
        return None if row is None else msgspec.convert(row, InlineVoice)

    async def put(self, voice: InlineVoice) -> InlineVoice:
        """Store a voice; one already stored under its id or key wins (two workers, one key)."""
        async with self._db.service_transaction() as conn:
            await conn.execute(_Q["put_voice"], msgspec.structs.asdict(voice))
            row = await fetch_optional(conn, _Q["get_voice"], {"voice_id": voice.voice_id})
        return voice if row is None else msgspec.convert(row, InlineVoice)

    async def delete(self, voice_id: str) -> bool:
        """Remove a voice; ``False`` when it was not there."""
        async with self._db.service_transaction() as conn:
            return await fetch_optional(conn, _Q["delete_voice"], {"voice_id": voice_id}) is not None

    async def entries(self) -> Sequence[InlineEntry]:
        """Every stored voice, without its audio (a listing never loads every recording)."""
        async with self._db.service_transaction() as conn:
            return [msgspec.convert(row, InlineEntry) for row in await fetch_all(conn, _Q["all_voices"], {})]
