"""A voice's clips, as the studio page shows them: the voice's synthesis jobs a page at a time (newest
first), a job's audio as a WAV or an MP3 download, cancelling a job that has not ended, and deleting one
that has, with its stored render.

Cancelling and deleting run as the service (owners only read `synthesis_jobs`), each after the caller's own
check that the job is theirs, with the owner in the statement as well.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

import msgspec

from backend.audio.render import render_as_mp3
from backend.auth.verify import UserClaims
from backend.cpu import CpuExecutor
from backend.db.audit import record_audit
from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import Database
from backend.errors import NotFound, SynthesisEnded, SynthesisNotFinished, ValidationFailed
from backend.records.synthesis_jobs import SynthesisJobStatus
from backend.storage import integrity
from backend.storage.client import ObjectStorage
from backend.synthesis import service
from backend.voices import service as voices

_Q = load_queries(Path(__file__).with_suffix(".sql"))
#: Clips one page holds unless the caller asks for fewer, and the most it may ask for.
PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100
ClipFormat = Literal["wav", "mp3"]
MEDIA_TYPES: Final[dict[str, str]] = {"wav": "audio/wav", "mp3": "audio/mpeg"}


class Clip(msgspec.Struct, rename="camel"):
    """One synthesis job in a voice's history."""

    job_id: uuid.UUID
    status: SynthesisJobStatus
    text: str
    duration_ms: int | None
    error: service.JobError | None
    created_at: datetime
    finished_at: datetime | None


class ClipPage(msgspec.Struct, rename="camel"):
    """A page of a voice's clips, newest first; `nextCursor` fetches the next page (null after the last)."""

    clips: list[Clip]
    next_cursor: str | None


class VoicePreview(msgspec.Struct, rename="camel"):
    """What to play to hear a voice: the preview its clone made, else its newest clip; null `audioUrl`
    (and `source`) when it has neither yet."""

    audio_url: str | None
    expires_in: int
    #: `preview` (made when the voice was cloned), `clip` (its newest clip), or null.
    source: str | None


class ClipAudio(msgspec.Struct, frozen=True):
    """A job's audio to download: its bytes, media type and file name."""

    data: bytes
    media_type: str
    filename: str


def _cursor(clip: Clip) -> str:
    raw = f"{clip.created_at.isoformat()}|{clip.job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str | None) -> tuple[datetime | None, uuid.UUID | None]:
    """The (created_at, id) a cursor from `_cursor` names; 400 for anything else."""
    if cursor is None:
        return None, None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, job_id = raw.partition("|")
        return datetime.fromisoformat(at), uuid.UUID(job_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationFailed("cursor: not a cursor this route gave (use nextCursor as it came)") from None


async def voice_clips(
    db: Database, claims: UserClaims, voice_id: uuid.UUID, *, limit: int, cursor: str | None
) -> ClipPage:
    """A page of the caller's voice's clips, newest first; 404 for a voice that is not theirs (or deleted)."""
    before_at, before_id = _after(cursor)
    async with db.user_transaction(claims.raw) as conn:
        if not await voices.visible(conn, voice_id):
            raise NotFound("Voice not found.")
        params = {"voice_id": voice_id, "before_at": before_at, "before_id": before_id, "limit": limit + 1}
        rows = await fetch_all(conn, _Q["voice_jobs"], params)
    clips = [
        Clip(
            job_id=row["job_id"],
            status=row["status"],
            text=row["text"],
            duration_ms=row["duration_ms"],
            error=None if row["error_code"] is None else service.JobError(row["error_code"], row["error_message"]),
            created_at=row["created_at"],
            finished_at=row["finished_at"],
        )
        for row in rows[:limit]
    ]
    return ClipPage(clips, _cursor(clips[-1]) if len(rows) > limit else None)


async def voice_preview(db: Database, storage: ObjectStorage, claims: UserClaims, voice_id: uuid.UUID) -> VoicePreview:
    """A short-lived URL to hear the caller's voice (404 for anyone else's); 409 `stored_object_altered` for a
    file changed since voicegate stored it."""
    async with db.user_transaction(claims.raw) as conn:
        if not await voices.visible(conn, voice_id):
            raise NotFound("Voice not found.")
        heard = await fetch_optional(conn, _Q["preview_of_voice"], {"voice_id": voice_id})
    if heard is None:
        return VoicePreview(audio_url=None, expires_in=0, source=None)
    url = await integrity.signed_url(
        db,
        storage,
        heard["bucket"],
        heard["path"],
        service.RESULT_URL_SECONDS,
        actor=f"user:{claims.sub}",
        subject=("voice", voice_id),
    )
    return VoicePreview(audio_url=url, expires_in=service.RESULT_URL_SECONDS, source=heard["source"])


async def cancel_job(db: Database, claims: UserClaims, job_id: uuid.UUID) -> service.JobStatus:
    """Cancel the caller's queued or running job: nothing of it is stored after. 409 once it has ended."""
    await service.owned_job(db, claims, job_id)
    async with db.service_transaction() as conn:
        canceled = await fetch_optional(conn, _Q["cancel_job"], {"id": job_id, "owner_id": uuid.UUID(claims.sub)})
    if canceled is None:
        current = await service.owned_job(db, claims, job_id)
        raise SynthesisEnded(f"The job has already ended ({current.status}); there is nothing to cancel.")
    return await service.job_status(db, claims, job_id)


async def delete_job(db: Database, storage: ObjectStorage, claims: UserClaims, job_id: uuid.UUID) -> None:
    """Delete the caller's ended job with its render (row, digest record and object, with an audit event),
    all or nothing: a render Storage cannot delete keeps the row. 409 while it is queued or running."""
    await service.owned_job(db, claims, job_id)
    async with db.service_transaction(budget=integrity.WRITE_BUDGET_SECONDS) as conn:
        row = await fetch_optional(conn, _Q["delete_job"], {"id": job_id, "owner_id": uuid.UUID(claims.sub)})
        if row is None:
            raise SynthesisNotFinished("The job is still queued or running; cancel it before deleting it.")
        removed: list[str] = []
        if row["output_bucket_id"] is not None and row["output_object_path"] is not None:
            removed = await integrity.remove(conn, storage, row["output_bucket_id"], [row["output_object_path"]])
        detail = {"bucket_id": row["output_bucket_id"], "objects": [row["output_object_path"]], "removed": removed}
        await record_audit(conn, f"user:{claims.sub}", "synthesis_job.delete", "synthesis_job", job_id, detail=detail)


async def clip_audio(
    db: Database, storage: ObjectStorage, cpu: CpuExecutor, claims: UserClaims, job_id: uuid.UUID, *, fmt: ClipFormat
) -> ClipAudio:
    """The finished job's audio: its stored WAV (checked against its digest, with its C2PA manifest), or that
    WAV encoded as MP3. 409 like `GET /{id}/result` while it runs, after it failed or was cancelled."""
    job, bucket, path = await service.finished_render(db, claims, job_id)
    wav = await integrity.read(db, storage, bucket, path, actor=f"user:{claims.sub}", subject=("synthesis_job", job_id))
    data = wav if fmt == "wav" else await cpu.run(job.owner_id, render_as_mp3, wav)
    return ClipAudio(data, MEDIA_TYPES[fmt], f"clip-{job_id}.{fmt}")
