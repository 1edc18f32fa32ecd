"""What a reflection's voice is asked for and answered with, from a direct upload (`POST .../voice/clone`) or from
a voice the user already has at a provider (`PATCH .../voice`): either way a queued attempt on the reflection
(`backend.reflections.service.ReflectionsService` makes it)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from backend.casing import camel_case
from backend.clone import StartedClone
from backend.fields import LanguageTag, Name
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
