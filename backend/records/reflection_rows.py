"""A reflection as the launch gate reads it: whether the caller may see it, its mirror with its launch readiness
(`public.voice_launch_readiness`, every reason it may not launch yet), and the voice a runtime would speak with.
The gate's rule is `backend.policy.launch`."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec

from backend.db.connection import Connection
from backend.db.execute import fetch_optional
from backend.db.queries import load_queries
from backend.domain.attempts import VoiceMirror
from backend.domain.reflections import LaunchRow
from backend.errors import NotFound

_Q = load_queries(Path(__file__).with_suffix(".sql"))


class LaunchReadiness(msgspec.Struct, frozen=True, kw_only=True):
    """A reflection's mirror and whether it may launch, with every blocking reason."""

    reflection_id: uuid.UUID
    voice: VoiceMirror
    ready: bool
    reasons: list[str]


async def require_visible(conn: Connection, reflection_id: uuid.UUID) -> str:
    """The reflection's name; NotFound unless the reflection is visible on `conn` (the caller's own, under RLS)."""
    row = await fetch_optional(conn, _Q["reflection_visible"], {"id": reflection_id})
    if row is None:
        raise NotFound("Reflection not found.")
    name: str = row["name"]
    return name


async def readiness(conn: Connection, reflection_id: uuid.UUID) -> LaunchReadiness:
    """The reflection's mirror and its launch readiness, read on `conn` as the caller; NotFound for anyone else's
    reflection."""
    row = await fetch_optional(conn, _Q["readiness"], {"id": reflection_id})
    if row is None:
        raise NotFound("Reflection not found.")
    return LaunchReadiness(
        reflection_id=row["id"],
        voice=msgspec.convert(row["voice"], VoiceMirror),
        ready=row["ready"],
        reasons=list(row["reasons"]),
    )


async def launch_row(conn: Connection, reflection_id: uuid.UUID) -> LaunchRow:
    """The reflection's readiness and the voice its active attempt speaks with, in one snapshot, read on `conn` as
    the caller; NotFound for anyone else's reflection."""
    row = await fetch_optional(conn, _Q["launch"], {"id": reflection_id})
    if row is None:
        raise NotFound("Reflection not found.")
    return msgspec.convert(row, LaunchRow)
