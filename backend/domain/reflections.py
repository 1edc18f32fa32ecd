"""Reflections, the voice state clients read, their attempts, preview completion and launch."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from backend.db.execute import fetch_all, fetch_one, fetch_optional
from backend.db.pool import Connection, become_service
from backend.db.queries import load_queries
from backend.errors import Conflict, NotFound
from backend.lifecycle.preview import PREVIEWS_BUCKET, preview_path
from backend.storage.client import ObjectStorage

if TYPE_CHECKING:
    from backend.idempotency import Recorder

Q = load_queries(Path(__file__).with_suffix(".sql"))
LIST_LIMIT = 200
PREVIEW_URL_SECONDS = 600


class Reflection(msgspec.Struct, rename="camel"):
    """A reflection as clients see it; `voice` is the mirror of its active attempt."""

    id: uuid.UUID
    name: str
    voice: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class VoiceState(msgspec.Struct, rename="camel"):
    """The mirror plus launch readiness with every blocking reason."""

    reflection_id: uuid.UUID
    voice: dict[str, Any]
    launch_ready: bool
    blocking_reasons: list[str]
    #: A short-lived URL of the preview to listen to, once it is generated.
    preview_url: str | None = None


class Attempt(msgspec.Struct, rename="camel"):
    """One clone attempt, without operator-only fields (lease, enrolment key)."""

    id: uuid.UUID
    reflection_id: uuid.UUID | None
    voice_id: uuid.UUID
    provider: str
    source: str
    status: str
    runtime_status: str
    preview_required: bool
    preview_status: str
    retry_count: int
    max_retries: int
    next_retry_at: datetime | None
    provider_voice_id: str | None
    provider_target_model: str | None
    last_error: dict[str, str | None] | None
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class Session(msgspec.Struct, rename="camel"):
    """A launched session of a reflection."""

    id: uuid.UUID
    reflection_id: uuid.UUID
    attempt_id: uuid.UUID
    created_at: datetime


class LaunchBlocked(Conflict):
    """The reflection's voice is not ready to launch."""

    code = "launch_blocked"

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(f"The voice is not ready to launch: {', '.join(reasons)}.")
        self.reasons = reasons

    def extensions(self) -> dict[str, object]:
        """Clients show each reason; see `voice_launch_readiness`."""
        return {"blockingReasons": self.reasons}


def attempt_view(row: dict[str, Any]) -> Attempt:
    """The client-facing shape of an attempt row."""
    error = (
        None
        if row["last_error_code"] is None
        else {"code": row["last_error_code"], "message": row["last_error_message"]}
    )
    fields = {name: row[name] for name in Attempt.__struct_fields__ if name in row}
    return Attempt(**fields, last_error=error)


async def create_reflection(conn: Connection, name: str) -> Reflection:
    """Create a reflection owned by the caller."""
    return Reflection(**await fetch_one(conn, Q["create_reflection"], {"name": name}))


async def list_reflections(conn: Connection) -> list[Reflection]:
    """The caller's reflections, newest first."""
    rows = await fetch_all(conn, Q["list_reflections"], {"limit": LIST_LIMIT})
    return [Reflection(**row) for row in rows]


async def get_reflection(conn: Connection, reflection_id: uuid.UUID) -> Reflection:
    """One of the caller's reflections; another user's is as missing as a non-existent one."""
    row = await fetch_optional(conn, Q["get_reflection"], {"id": reflection_id})
    if row is None:
        raise NotFound("Reflection not found.")
    return Reflection(**row)


async def voice_state(conn: Connection, reflection_id: uuid.UUID) -> VoiceState:
    """The reflection's voice mirror and whether it may launch."""
    reflection = await get_reflection(conn, reflection_id)
    readiness = await fetch_one(conn, Q["readiness"], {"id": reflection_id})
    return VoiceState(reflection.id, reflection.voice, readiness["ready"], list(readiness["reasons"]))


async def voice_state_with_preview(
    conn: Connection, storage: ObjectStorage, owner_id: uuid.UUID, reflection_id: uuid.UUID
) -> VoiceState:
    """`voice_state`, plus a signed URL of the active attempt's preview when there is one to hear."""
    state = await voice_state(conn, reflection_id)
    attempt_id = state.voice.get("attemptId")
    if attempt_id and state.voice.get("previewStatus") in {"ready", "completed"}:
        path = preview_path(owner_id, uuid.UUID(str(attempt_id)))
        # A preview purged from Storage (or never uploaded) leaves the state readable, without a URL.
        with contextlib.suppress(NotFound):
            state.preview_url = await storage.create_signed_url(PREVIEWS_BUCKET, path, PREVIEW_URL_SECONDS)
    return state


async def list_attempts(conn: Connection, reflection_id: uuid.UUID) -> list[Attempt]:
    """The reflection's attempts, newest first."""
    await get_reflection(conn, reflection_id)
    rows = await fetch_all(conn, Q["list_attempts"], {"reflection_id": reflection_id, "limit": LIST_LIMIT})
    return [attempt_view(row) for row in rows]


async def get_attempt(conn: Connection, reflection_id: uuid.UUID, attempt_id: uuid.UUID) -> Attempt:
    """One attempt of one of the caller's reflections."""
    row = await fetch_optional(conn, Q["get_attempt"], {"reflection_id": reflection_id, "attempt_id": attempt_id})
    if row is None:
        raise NotFound("Attempt not found.")
    return attempt_view(row)


async def active_attempt_row(conn: Connection, reflection_id: uuid.UUID) -> dict[str, Any]:
    """The reflection's active attempt row (as visible on `conn`), or NotFound."""
    await get_reflection(conn, reflection_id)
    row = await fetch_optional(conn, Q["active_attempt"], {"reflection_id": reflection_id})
    if row is None:
        raise Conflict("The reflection has no voice yet.")
    return row


async def complete_preview(service_conn: Connection, attempt: dict[str, Any], actor: str) -> Attempt:
    """Mark the active attempt's preview as heard (`ready → completed`), which opens the launch gate.

    Runs on a service connection: users never call the transition function themselves; the caller has
    already read `attempt` under their own RLS, and its version fences any change since.
    """
    if attempt["preview_status"] != "ready":
        raise Conflict(f"The preview is {attempt['preview_status']}, not ready to complete.")
    row = await fetch_one(
        service_conn,
        Q["transition_attempt"],
        {
            "attempt_id": attempt["id"],
            "version": attempt["version"],
            "actor": actor,
            "status": None,
            "runtime_status": None,
            "preview_status": "completed",
            "lease_owner": None,
            "changes": json.dumps({}),
        },
    )
    return attempt_view(row)


RETRYABLE = frozenset({"failed", "canceled"})


async def retry_clone(conn: Connection, reflection_id: uuid.UUID, record: Recorder | None = None) -> Attempt:
    """Start a new attempt from the active one's voice and sample when it failed or was canceled.

    `conn` is a user transaction: the active attempt is read under the caller's RLS, then the
    transaction becomes the service to insert (the insert supersedes the old attempt and enqueues).
    `record` (an Idempotency-Key's) gets the new attempt last, so it commits with the insert.
    """
    current = await active_attempt_row(conn, reflection_id)
    if current["status"] not in RETRYABLE:
        raise Conflict(f"Only a failed or canceled clone can be retried; this one is {current['status']}.")
    await become_service(conn)
    attempt = attempt_view(await fetch_one(conn, Q["retry_attempt"], {"attempt_id": current["id"]}))
    if record is not None:
        await record(conn, attempt)
    return attempt


async def launch_session(conn: Connection, reflection_id: uuid.UUID) -> Session:
    """Launch a session when the voice is ready, synced and previewed; else LaunchBlocked with reasons."""
    state = await voice_state(conn, reflection_id)
    if not state.launch_ready:
        raise LaunchBlocked(state.blocking_reasons)
    row = await fetch_one(
        conn, Q["create_session"], {"reflection_id": reflection_id, "attempt_id": state.voice["attemptId"]}
    )
    return Session(**row)
