"""What the speech routes take: the text to speak and its format, for a voice or a reflection's voice. The use
cases are `backend.speech.service.SpeechService`'s."""

from __future__ import annotations

import uuid

import msgspec

from backend.audio.formats import SpeechFormat
from backend.fields import Text


class SpeechRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /v1/reflections/{id}/speech`: speak `text` in the reflection's voice."""

    text: Text
    #: `pcm_24000` (16-bit little-endian mono PCM at 24 kHz), `wav` or `mp3`.
    format: SpeechFormat = "pcm_24000"


class VoiceSpeechRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """`POST /api/v1/speech`: speak `text` in one of the caller's ready voices."""

    voice_id: uuid.UUID
    text: Text
    #: `pcm_24000` (16-bit little-endian mono PCM at 24 kHz), `wav` or `mp3`.
    format: SpeechFormat = "pcm_24000"
