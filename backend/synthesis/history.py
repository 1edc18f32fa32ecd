"""A voice's clips, as the studio page shows them: the voice's synthesis jobs a page at a time (newest
first), the preview to hear it by, and a job's audio as a WAV or an MP3 download. Reading, cancelling and
deleting them are `backend.synthesis.service.SynthesisService`'s."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final, Literal

import msgspec

from backend.records.synthesis_jobs import SynthesisJobStatus
from backend.synthesis import types

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
    error: types.JobError | None
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
