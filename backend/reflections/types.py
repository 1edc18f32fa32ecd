"""What the `/v1/reflections` routes take and answer: a reflection, its voice state with the launch gate's reasons,
its sessions and what a runtime speaks with; and its voice, from a direct upload (`POST .../voice/clone`) or from
a voice the user already has at a provider (`PATCH .../voice`): either way a queued attempt on the reflection
(`backend.reflections.service.ReflectionsService` makes it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from backend.casing import camel_case
from backend.clone import StartedClone
from backend.domain.attempts import VoiceMirror
from backend.fields import LanguageTag, Name
from backend.providers.base import STREAM_SAMPLE_RATE
from backend.providers.config import Provider


@camel_case
class QueuedClone(StartedClone):
    """`202` of `POST /v1/reflections/{id}/voice/clone`: the stored sample and its queued clone attempt."""


class CustomVoice(msgspec.Struct, forbid_unknown_fields=True):
    """Body of `PATCH .../voice`: a voice the caller already has at a provider."""

    provider: Provider
    voice_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")]
    name: Name | None = None
    language: LanguageTag | None = None


class Reflection(msgspec.Struct, rename="camel"):
    """A reflection as clients see it; `voice` is the mirror of its active attempt."""

    id: uuid.UUID
    name: str
    voice: VoiceMirror
    created_at: datetime
    updated_at: datetime


class RuntimeVoice(msgspec.Struct, rename="camel"):
    """What a conversation runtime needs to speak in the reflection's voice: the voice, where it lives,
    and the route that streams it (`speechPath`, relative to the API, in `formats`, PCM at `sampleRate`)."""

    voice_id: uuid.UUID
    attempt_id: uuid.UUID
    provider: str
    provider_voice_id: str
    target_model: str | None
    speech_path: str
    formats: list[str]
    sample_rate: int = STREAM_SAMPLE_RATE


class Session(msgspec.Struct, rename="camel"):
    """A launched session of a reflection, and what a runtime needs to speak in its voice now.

    `runtime` follows the reflection's active voice; it is null (with the reasons) while the gate is
    closed, e.g. after a new clone superseded the one the session launched with.
    """

    id: uuid.UUID
    reflection_id: uuid.UUID
    attempt_id: uuid.UUID
    created_at: datetime
    launch_ready: bool
    blocking_reasons: list[str]
    runtime: RuntimeVoice | None


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
