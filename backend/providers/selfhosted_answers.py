"""What a self-hosted speech server answers, read for the `selfhosted` provider (`backend.providers.selfhosted`): its
errors in the shapes such servers use, classified; its lists of voices and the voice a create made; and a speech
stream's audio, raw PCM or a WAV whose header is read and checked."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Final

import httpx
import msgspec

from backend.providers.base import STREAM_SAMPLE_RATE
from backend.providers.errors import (
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    VoiceNotFoundError,
    answer_fields,
)
from backend.providers.http import TRANSIENT_STATUSES, busy, text_or_none
from backend.wav import wav_format

PROVIDER: Final = "selfhosted"
NOT_FOUND: Final = "The voice does not exist on the self-hosted server."
_MISSING_VOICE = re.compile(r"(voice|speaker).*(not found|unknown|does not exist|not exist|invalid|unsupported)", re.I)
_UNKNOWN_VOICE = re.compile(r"(not found|unknown|invalid|unsupported).*(voice|speaker)", re.I)
_MODEL = re.compile(r"\bmodel\b", re.I)


class SeeOther(ProviderError):
    """A 303 to the result of a request still running (Modal, after 150 s): poll `location`."""

    def __init__(self, location: str | None, status: int) -> None:
        super().__init__(PROVIDER, "The self-hosted server is still working.", http_status=status)
        self.location = location


def _error_fields(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """(code, message, param) from the shapes such servers answer: OpenAI's `{"error": {...}}`,
    FastAPI's `{"detail": ...}`, vLLM-Omni's `{"success": false, "error": "..."}`, or text."""
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.MsgspecError:
        return None, response.text[:200] or None, None
    if not isinstance(body, dict):
        return None, None, None
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code") if isinstance(error.get("code"), str) else error.get("type")
        return text_or_none(code), text_or_none(error.get("message")), text_or_none(error.get("param"))
    if isinstance(error, str):
        return None, error, None
    detail = body.get("detail")
    if isinstance(detail, list):
        messages = [str(item.get("msg")) for item in detail if isinstance(item, dict)]
        return "validation_error", "; ".join(messages), None
    return None, text_or_none(detail) or text_or_none(body.get("message")), None


def classify(response: httpx.Response) -> ProviderError:
    """Map an error answer of an OpenAI-shaped server to an error class."""
    status = response.status_code
    if status == 303:
        return SeeOther(response.headers.get("location"), status)
    code, message, param = _error_fields(response)
    common = answer_fields(status, code, message)
    if status in TRANSIENT_STATUSES:
        return busy(PROVIDER, response, common, "The self-hosted voice server is busy; try again later.")
    return _rejection(status, message or "", param, common)


def _rejection(status: int, text: str, param: str | None, common: dict[str, Any]) -> PermanentProviderError:
    if status in {401, 403}:
        return PermanentProviderError(PROVIDER, "The self-hosted server rejected the configured credentials.", **common)
    if status == 413:
        return PermanentProviderError(PROVIDER, "The sample is too large for the self-hosted server.", **common)
    if status in {400, 404} and (param == "model" or (param is None and _MODEL.search(text) and "voice" not in text)):
        return PermanentProviderError(
            PROVIDER,
            "The self-hosted server does not serve the configured model (SELFHOSTED_MODEL).",
            **{**common, "provider_code": common["provider_code"] or "model_not_found"},
        )
    if status in {400, 404} and (param == "voice" or _MISSING_VOICE.search(text) or _UNKNOWN_VOICE.search(text)):
        return VoiceNotFoundError(
            PROVIDER, NOT_FOUND, **{**common, "provider_code": common["provider_code"] or "voice_not_found"}
        )
    return PermanentProviderError(PROVIDER, "The self-hosted voice server rejected the request.", **common)


def listed_voices(body: object) -> list[dict[str, Any]]:
    """The voices of a `GET /v1/audio/voices` answer: OpenAI's `{"data": [...]}`, vLLM-Omni's
    `{"voices": [names], "uploaded_voices": [...]}` (only the uploaded ones are ours), or a list."""
    items: object = body
    if isinstance(body, dict):
        for field in ("data", "uploaded_voices", "voices"):
            if isinstance(body.get(field), list):
                items = body[field]
                break
    if not isinstance(items, list):
        raise ValueError("the answer holds no list of voices")  # noqa: TRY004 - a malformed answer, not a bug
    voices = []
    for item in items:
        entry = {"name": item} if isinstance(item, str) else item
        if not isinstance(entry, dict) or not isinstance(voice_key(entry), str):
            raise ValueError("a listed voice has neither an id nor a name")  # noqa: TRY004 - a malformed answer
        voices.append(entry)
    return voices


def voice_key(entry: dict[str, Any]) -> object:
    return entry.get("id") or entry.get("voice_id") or entry.get("name")


def created_voice(body: object, name: str) -> dict[str, Any]:
    """The voice a create made (or a `GET /v1/voices/{name}` describes): `{id, name, ...}`, vLLM-Omni's
    `{"success": true, "voice": {...}}` or chatterbox's `{"message": ..., "voice": {...}}`; a server that
    echoes nothing made the voice under the name it was sent."""
    if not isinstance(body, dict) or body.get("success") is False:
        raise ValueError("the answer does not describe a created voice")
    voice = body["voice"] if isinstance(body.get("voice"), dict) else body
    return voice if isinstance(voice_key(voice), str) else {**voice, "name": name}


def data_url(audio: bytes, mime_type: str) -> str:
    """A base64 data URL of the reference, as `ref_audio` takes it."""
    return f"data:{mime_type};base64,{base64.b64encode(audio).decode()}"


def unreadable(exc: ValueError) -> TransientProviderError:
    return TransientProviderError(
        PROVIDER, "The self-hosted voice server sent an unreadable answer.", operator_detail=str(exc)
    )


def unplayable(exc: ValueError) -> PermanentProviderError:
    return PermanentProviderError(
        PROVIDER,
        "The self-hosted voice server answered audio voicegate cannot play.",
        provider_code="unsupported_audio",
        operator_detail=str(exc),
    )


def is_wav(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def _stream_start(head: bytes) -> tuple[int, int | None] | None:
    """Where the samples of a stream starting with ``head`` begin and how many bytes of them it declares
    (None: raw PCM, to its end); None while ``head`` is too short to tell."""
    if len(head) < 12:
        return None
    if not is_wav(head):
        return 0, None
    try:
        found = wav_format(head)
    except ValueError as exc:
        raise unplayable(exc) from exc
    if found is None:
        return None
    if (found.encoding, found.channels, found.sample_rate) != ("pcm16", 1, STREAM_SAMPLE_RATE):
        detail = f"{found.encoding}, {found.channels} channel(s), {found.sample_rate} Hz"
        raise unplayable(ValueError(f"the streamed WAV is {detail}, not pcm16 mono at {STREAM_SAMPLE_RATE} Hz"))
    return found.data_offset, found.data_size


async def pcm_of(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """A speech stream as `STREAM_SAMPLE_RATE` 16-bit mono PCM: raw PCM passes as it comes; a WAV has its
    header read and checked, then its samples pass, up to the size it declares. Whatever is wrong with
    it is raised before the first chunk."""
    head = b""  # the start of the answer, until it shows whether it is a WAV
    started = False
    remaining: int | None = None
    async for chunk in chunks:
        if not started:
            head += chunk
            if (start := _stream_start(head)) is None:
                continue
            started = True
            offset, remaining = start
            chunk = head[offset:]  # noqa: PLW2901 - the samples after the header
        if remaining is not None:
            chunk, remaining = chunk[:remaining], remaining - min(len(chunk), remaining)  # noqa: PLW2901
        if chunk:
            yield chunk
    if not started and not b"RIFF".startswith(head[:4]):
        yield head  # raw PCM shorter than a WAV header
