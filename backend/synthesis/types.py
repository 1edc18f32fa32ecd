"""What the `/api/v1/clone` routes and a voice's clips take and answer: a job's request, its acceptance, status and
result (a short-lived signed URL of a WAV), a page of a voice's clips (newest first), the preview to hear it by
and a clip's audio as a WAV or an MP3 download. The use cases are
`backend.synthesis.service.SynthesisService`'s methods."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final, Literal

import msgspec

from backend.fields import Name, Text
from backend.provenance import PROVENANCE
from backend.records.synthesis_jobs import SynthesisJobStatus

#: Clips one page holds unless the caller asks for fewer, and the most it may ask for.
PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100
ClipFormat = Literal["wav", "mp3"]
MEDIA_TYPES: Final[dict[str, str]] = {"wav": "audio/wav", "mp3": "audio/mpeg"}


class JobRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """`POST /api/v1/clone`: speak `text` with a voice, or with the voice cloned from a sample."""

    text: Text
    sample_id: uuid.UUID | None = None
    voice_id: uuid.UUID | None = None
    #: The name of a voice created from the sample (default: the sample's name, else "Voice from sample").
    name: Name | None = None


class JobAccepted(msgspec.Struct, rename="camel"):
    """`202` of `POST /api/v1/clone`."""

    job_id: uuid.UUID
    status: SynthesisJobStatus
    voice_id: uuid.UUID
    #: The clone attempt the job waits for; null when the voice was ready already.
    attempt_id: uuid.UUID | None


class JobError(msgspec.Struct):
    """Why a job failed: a stable code and a message safe to show."""

    code: str
    message: str | None


class JobProgress(msgspec.Struct):
    """How far a running job has got: `done` of `total` parts (a part is a sentence or a few short ones)."""

    done: int
    total: int
    unit: str = "parts"


class JobStatus(msgspec.Struct, rename="camel"):
    """A synthesis job as its owner sees it."""

    job_id: uuid.UUID
    status: SynthesisJobStatus
    voice_id: uuid.UUID
    sample_id: uuid.UUID | None
    attempt_id: uuid.UUID | None
    duration_ms: int | None
    error: JobError | None
    #: Parts spoken so far, from when a worker starts the job (null before).
    progress: JobProgress | None
    created_at: datetime
    finished_at: datetime | None
    #: `c2pa` once the job succeeded: its WAV carries a signed C2PA manifest (`voicegate verify FILE`).
    provenance: str | None = None


class JobResult(msgspec.Struct, rename="camel"):
    """Where to download a finished job's audio (a WAV with its C2PA manifest embedded)."""

    audio_url: str
    expires_in: int
    mime_type: str
    duration_ms: int | None
    provenance: str = PROVENANCE


class Clip(msgspec.Struct, rename="camel"):
    """One synthesis job in a voice's history."""

    job_id: uuid.UUID
    status: SynthesisJobStatus
    text: str
    duration_ms: int | None
    error: JobError | None
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
