"""The launch gate, one rule for every area that asks whether a reflection's voice may speak: its state (the
mirror of its active attempt and every reason it may not launch yet, from `public.voice_launch_readiness`), and
the provider voice a runtime speaks with once it may (ready, synced and previewed)."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec

from backend.db.connection import Connection
from backend.db.execute import fetch_optional
from backend.db.queries import load_queries
from backend.errors import LaunchBlocked, NotFound
from backend.providers.base import ProviderVoice
from backend.records.attempts import VoiceMirror

_Q = load_queries(Path(__file__).with_suffix(".sql"))


class VoiceState(msgspec.Struct, rename="camel"):
    """The mirror plus launch readiness with every blocking reason."""

    reflection_id: uuid.UUID
    voice: VoiceMirror
    launch_ready: bool
    blocking_reasons: list[str]
    #: A short-lived URL of the preview to listen to, once it is generated.
    preview_url: str | None = None
    #: `c2pa` with a preview URL: the preview carries a signed C2PA manifest.
    provenance: str | None = None
    #: Why a generated preview has no URL: `stored_object_altered` when its file changed since it was stored.
    preview_error: str | None = None


class LaunchVoice(msgspec.Struct, frozen=True, kw_only=True):
    """The voice a reflection speaks with once its launch gate passes."""

    attempt_id: uuid.UUID
    voice_id: uuid.UUID
    voice: ProviderVoice


async def require_visible(conn: Connection, reflection_id: uuid.UUID) -> str:
    """The reflection's name; NotFound unless the reflection is visible on `conn` (the caller's own, under RLS)."""
    row = await fetch_optional(conn, _Q["reflection_visible"], {"id": reflection_id})
    if row is None:
        raise NotFound("Reflection not found.")
    name: str = row["name"]
    return name


async def voice_state(conn: Connection, reflection_id: uuid.UUID) -> VoiceState:
    """The reflection's mirror and its launch readiness with every blocking reason, read on `conn` as the caller;
    NotFound for anyone else's reflection."""
    row = await fetch_optional(conn, _Q["voice_state"], {"id": reflection_id})
    if row is None:
        raise NotFound("Reflection not found.")
    return VoiceState(row["id"], msgspec.convert(row["voice"], VoiceMirror), row["ready"], list(row["reasons"]))


async def launch_voice(conn: Connection, reflection_id: uuid.UUID) -> LaunchVoice:
    """The provider voice a runtime speaks with, read on `conn` as the caller: NotFound for anyone else's
    reflection, LaunchBlocked (every reason) unless its active attempt is ready, synced and previewed."""
    state = await voice_state(conn, reflection_id)
    if not state.launch_ready:
        raise LaunchBlocked(state.blocking_reasons)
    row = await fetch_optional(conn, _Q["runtime_voice"], {"id": reflection_id})
    if row is None:
        raise LaunchBlocked(["voice_deleted"])  # deleted since the gate was read, in this very transaction
    voice = ProviderVoice(
        provider=row["provider"],
        voice_id=row["provider_voice_id"],
        target_model=row["target_model"],
        language=row["language"],
        metadata=row["provider_metadata"],
    )
    return LaunchVoice(attempt_id=row["attempt_id"], voice_id=row["voice_id"], voice=voice)
