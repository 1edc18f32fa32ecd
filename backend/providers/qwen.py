"""Qwen (Alibaba DashScope) voice enrolment and non-realtime synthesis, whole or streamed (SSE)."""

from __future__ import annotations

import base64
import contextlib
import random
import re
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar

import httpx
import msgspec

from backend.providers.base import ProviderVoice, SampleRef, SampleRules, SendMeter, SynthesisResult, primary_language
from backend.providers.enrolment import enrol_once, qwen_preferred_name
from backend.providers.env import ProviderConfigError, key_setting, url_setting
from backend.providers.errors import (
    ModelRetiredError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    VoiceNotFoundError,
    answer_fields,
)
from backend.providers.http import TRANSIENT_STATUSES, ProviderHttp, RetryPolicy, busy
from backend.providers.slots import ProviderSlots
from backend.secret import Secret

T = TypeVar("T")

PROVIDER: Final = "qwen"

QWEN_HOSTS: Final = {"intl": "dashscope-intl.aliyuncs.com", "cn": "dashscope.aliyuncs.com"}
# Workspace domains: {WorkspaceId}.<region>.maas.aliyuncs.com.
QWEN_WORKSPACE_SUFFIXES: Final = {
    "intl": ".ap-southeast-1.maas.aliyuncs.com",
    "cn": ".cn-beijing.maas.aliyuncs.com",
}


class QwenSettings(msgspec.Struct, frozen=True, kw_only=True):
    """DashScope access for Qwen voice enrolment and synthesis."""

    api_key: Secret | None
    region: str
    base_url: str


def settings_from_env(env: Mapping[str, str]) -> QwenSettings:
    """This provider's settings, checked; ProviderConfigError names the variable that does not fit."""
    region = env.get("QWEN_REGION", "intl").strip().lower() or "intl"
    if region not in QWEN_HOSTS:
        raise ProviderConfigError("QWEN_REGION must be 'intl' or 'cn'")
    api_key = key_setting("DASHSCOPE_API_KEY", env.get("DASHSCOPE_API_KEY"), prefix="sk-")
    raw_url = env.get("DASHSCOPE_BASE_URL", "")
    if not raw_url:
        return QwenSettings(api_key=api_key, region=region, base_url=f"https://{QWEN_HOSTS[region]}")
    base_url, host = url_setting("DASHSCOPE_BASE_URL", raw_url)
    for other, other_host in QWEN_HOSTS.items():
        fits_other = host == other_host or host.endswith(QWEN_WORKSPACE_SUFFIXES[other])
        if other != region and fits_other:
            # DashScope keys are per region: a key sent to the other region's host gets 401 InvalidApiKey.
            raise ProviderConfigError(
                f"DASHSCOPE_BASE_URL points at the {other!r} region but QWEN_REGION is {region!r}; "
                "DashScope keys only work in their own region"
            )
    if host.endswith(".aliyuncs.com") and not (
        host == QWEN_HOSTS[region] or host.endswith(QWEN_WORKSPACE_SUFFIXES[region])
    ):
        raise ProviderConfigError(f"DASHSCOPE_BASE_URL host is not a DashScope endpoint of region {region!r}")
    return QwenSettings(api_key=api_key, region=region, base_url=base_url)


ENROLMENT_MODEL: Final = "qwen-voice-enrollment"
TARGET_MODEL: Final = "qwen3-tts-vc-2026-01-22"
CUSTOMIZATION_PATH: Final = "/api/v1/services/audio/tts/customization"
GENERATION_PATH: Final = "/api/v1/services/aigc/multimodal-generation/generation"
DATA_URL_TYPES: Final = frozenset({"audio/wav", "audio/mpeg", "audio/mp4"})
MAX_DATA_URL_CHARS: Final = 10 * 1024 * 1024
LIST_PAGE_SIZE: Final = 100
#: What DashScope answers for a model it no longer serves (404).
MODEL_GONE_CODES: Final = frozenset({"ModelNotFound", "model_not_found"})
#: Codes of DashScope's 429 and 5xx answers: an SSE error event may carry one without a status.
BUSY_CODES: Final = frozenset(
    {
        "Throttling",
        "Throttling.RateQuota",
        "Throttling.BurstRate",
        "InternalError",
        "InternalError.Algo",
        "SystemError",
        "ModelServingError",
        "ModelUnavailable",
    }
)

SAMPLE_RULES: Final = SampleRules(
    formats=DATA_URL_TYPES,
    min_duration_s=3.0,
    max_duration_s=60.0,
    recommended_duration_s=(10.0, 20.0),
    min_sample_rate=24000,
    preferred_sample_rate=24000,
    max_bytes=10 * 1024 * 1024,
    max_files=1,
    mono=True,
    languages=frozenset({"zh", "en", "de", "it", "pt", "es", "ja", "ko", "fr", "ru"}),
)

# User-safe wording for the documented error codes; anything else gets the generic text.
SAFE_MESSAGES: Final = {
    "Audio.PreprocessError": "The sample has too little clear speech, or the transcript does not match it.",
    "Audio.DecoderError": "The sample could not be decoded.",
    "Audio.AudioRateError": "The sample rate is too low (at least 24 kHz is needed).",
    "Audio.DurationLimitError": "The sample is longer than 60 seconds.",
    "BadRequest.InputDownloadFailed": "The provider could not download the sample.",
    "BadRequest.VoiceNotFound": "The voice does not exist at the provider.",
    "Throttling.AllocationQuota": "The provider's voice storage limit is reached; delete unused voices.",
    "InvalidApiKey": "The provider rejected the configured credentials.",
    "NOT AUTHORIZED": "The provider rejected the configured credentials.",
    "Arrearage": "The provider account is not in good standing.",
    "DataInspectionFailed": "The provider's content moderation rejected the input.",
    "AllocationQuota.FreeTierOnly": "The provider's free quota is used up.",
}


class _ErrorBody(msgspec.Struct):
    code: str | None = None
    message: str | None = None
    request_id: str | None = None


class _CreateOutput(msgspec.Struct):
    voice: str
    target_model: str | None = None
    fallback_mode: bool | None = None
    fallback_reason: str | None = None


class _CreateResponse(msgspec.Struct):
    output: _CreateOutput
    usage: dict[str, Any] | None = None
    request_id: str | None = None


class _ListItem(msgspec.Struct):
    voice: str
    target_model: str | None = None
    language: str | None = None
    gmt_create: str | None = None
    gmt_modified: str | None = None


class _ListOutput(msgspec.Struct):
    voice_list: list[_ListItem] = msgspec.field(default_factory=list)
    total_count: int | None = None


class _ListResponse(msgspec.Struct):
    output: _ListOutput
    request_id: str | None = None


class _DeleteResponse(msgspec.Struct):
    request_id: str | None = None


class _Audio(msgspec.Struct):
    data: str | None = None
    url: str | None = None


class _SynthesisOutput(msgspec.Struct):
    audio: _Audio


class _SynthesisResponse(msgspec.Struct):
    output: _SynthesisOutput
    request_id: str | None = None


class _StreamOutput(msgspec.Struct):
    audio: _Audio | None = None
    finish_reason: str | None = None


class _StreamEvent(_ErrorBody):
    """One event of a streamed synthesis: audio, or (with a ``code``) the failure it ends with."""

    output: _StreamOutput | None = None


# An SSE comment DashScope sends with every event: the HTTP status the event stands for.
_EVENT_STATUS = re.compile(r"^:HTTP_STATUS/(\d{3})")


class _SseEvent(msgspec.Struct):
    name: str
    data: str
    #: From DashScope's ``:HTTP_STATUS/nnn`` comment or a ``status:`` field (which the SDK reads); else ``None``.
    status: int | None


class _SseDecoder:
    """Server-sent events, fed line by line: ``event:``, ``status:`` and ``data:`` fields up to each blank line."""

    def __init__(self) -> None:
        self._start()

    def _start(self) -> None:
        self._name = "message"
        self._status: int | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> _SseEvent | None:
        """The event this line ends (a blank line after data), else ``None``."""
        if not line:
            event = _SseEvent(self._name, "\n".join(self._data), self._status) if self._data else None
            self._start()
            return event
        if line.startswith(":"):
            found = _EVENT_STATUS.match(line)
            self._status = int(found[1]) if found else self._status
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._name = value
        elif field == "status" and value.strip().isdigit():
            self._status = int(value)
        elif field == "data":
            self._data.append(value)
        return None


def _error_body(response: httpx.Response) -> _ErrorBody:
    """The ``{code, message, request_id}`` of an error answer. DashScope sends it as JSON, or, to a request that
    asked for SSE, as an ``event:error`` whose ``data`` is that JSON, with the same non-2xx status; like the SDK
    (``dashscope/v2/errors.py`` ``_parse_body``), JSON is tried first, then the first event with a code."""
    body = _decoded(response.content, _ErrorBody)
    if body is None:
        decoder = _SseDecoder()
        events = (decoder.feed(line) for line in [*response.text.splitlines(), ""])
        found = (_decoded(event.data, _ErrorBody) for event in events if event is not None)
        body = next((b for b in found if b is not None and b.code), None)
    body = body or _ErrorBody(message=response.text[:200])
    # The SDK falls back on the gateway's header too (``dashscope/v2/errors.py`` ``_request_id``).
    return msgspec.structs.replace(body, request_id=body.request_id or response.headers.get("x-request-id"))


def _decoded(data: str | bytes, type_: type[T]) -> T | None:
    """``data`` decoded as JSON into ``type_``, or ``None`` when it is not that."""
    try:
        return msgspec.json.decode(data, type=type_)
    except msgspec.MsgspecError:
        return None


def classify(response: httpx.Response) -> ProviderError:
    """Map a DashScope error answer (JSON or SSE) to an error class."""
    return _answer_error(response.status_code, _error_body(response), response)


def _answer_error(status: int, body: _ErrorBody, response: httpx.Response) -> ProviderError:
    """The error for an answer's ``status`` and error ``body``; ``response`` gives the ``Retry-After``."""
    common = answer_fields(status, body.code, body.message, body.request_id)
    if status in TRANSIENT_STATUSES or body.code in BUSY_CODES:
        return busy(PROVIDER, response, common)
    message = SAFE_MESSAGES.get(body.code or "", "The voice provider rejected the request.")
    if body.code == "BadRequest.VoiceNotFound":
        return VoiceNotFoundError(PROVIDER, message, **common)
    return PermanentProviderError(PROVIDER, message, **common)


@contextlib.contextmanager
def _voice_gone() -> Iterator[None]:
    """Synthesis errors that mean the voice must be enrolled again: a model DashScope no longer serves raises
    ``ModelRetiredError``, a voice it does not know for that model ``VoiceNotFoundError``."""
    try:
        yield
    except PermanentProviderError as exc:
        if exc.provider_code in MODEL_GONE_CODES:
            raise exc.recast(ModelRetiredError, "The voice's model is retired at the provider.") from exc
        if exc.provider_code == "InvalidParameter" and "voice" in (exc.operator_detail or "").lower():
            # "Invalid voice specified": the voice was deleted, or is bound to another model.
            raise exc.recast(VoiceNotFoundError, SAFE_MESSAGES["BadRequest.VoiceNotFound"]) from exc
        raise


class QwenProvider:
    """Adapter for ``qwen-voice-enrollment`` (create/list/delete) and the VC generation endpoint."""

    name = PROVIDER
    sample_rules = SAMPLE_RULES

    def __init__(
        self,
        settings: QwenSettings,
        client: httpx.AsyncClient,
        *,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        create_timeout: httpx.Timeout | None = None,
        target_model: str = TARGET_MODEL,
        slots: ProviderSlots | None = None,
    ) -> None:
        if settings.api_key is None:
            raise ValueError("QwenProvider needs DASHSCOPE_API_KEY")
        self.region = settings.region
        self.target_model = target_model
        self._http = ProviderHttp(
            PROVIDER,
            client,
            settings.base_url,
            {"Authorization": f"Bearer {settings.api_key.reveal()}", "Content-Type": "application/json"},
            classify,
            policy=policy,
            rng=rng,
            create_timeout=create_timeout,
            slots=slots,
        )

    async def enrol(
        self,
        samples: Sequence[SampleRef],
        *,
        name: str,
        language: str | None,
        transcript: str | None,
        key: str,
    ) -> ProviderVoice:
        """Create a cloned voice bound to the pinned target model (or adopt the key's existing one)."""
        self.sample_rules.check(PROVIDER, samples, language)
        audio = self._audio_field(samples[0])
        payload_input: dict[str, Any] = {
            "action": "create",
            "target_model": self.target_model,
            "preferred_name": qwen_preferred_name(key),
            "audio": {"data": audio},
        }
        if transcript:
            payload_input["text"] = transcript
        if language:
            payload_input["language"] = primary_language(language)
        payload = {"model": ENROLMENT_MODEL, "input": payload_input}

        async def create() -> ProviderVoice:
            body, _ = await self._http.json("POST", CUSTOMIZATION_PATH, _CreateResponse, idempotent=False, json=payload)
            out = body.output
            return ProviderVoice(
                provider=PROVIDER,
                voice_id=out.voice,
                name=name,
                target_model=out.target_model or self.target_model,
                enrolment_key=key,
                request_id=body.request_id,
                language=payload_input.get("language"),
                metadata={
                    "region": self.region,
                    "preferred_name": qwen_preferred_name(key),
                    "fallback_mode": out.fallback_mode,
                    "fallback_reason": out.fallback_reason,
                    "usage": body.usage,
                },
            )

        return await enrol_once(key, self.find, create)

    def _audio_field(self, sample: SampleRef) -> str:
        """A public URL when there is one, else a base64 data URL within DashScope's 10 MB limit."""
        if sample.public_url:
            return sample.public_url
        data_url = f"data:{sample.mime_type};base64,{base64.b64encode(sample.data).decode()}"
        if len(data_url) >= MAX_DATA_URL_CHARS:
            raise PermanentProviderError(
                PROVIDER,
                "sample too large to send inline (max 10 MB encoded); a public URL is needed",
                provider_code="sample_rules",
            )
        return data_url

    async def find(self, key: str) -> ProviderVoice | None:
        """The voice whose generated name carries this key's ``preferred_name``."""
        prefix = f"qwen-tts-vc-{qwen_preferred_name(key)}-voice-"
        for voice in await self.list():
            if voice.voice_id.startswith(prefix):
                return msgspec.structs.replace(voice, enrolment_key=key)
        return None

    async def get(self, voice_id: str) -> ProviderVoice:
        """Found through ``list``: the enrolment API documents no single-voice query."""
        for voice in await self.list():
            if voice.voice_id == voice_id:
                return voice
        raise VoiceNotFoundError(
            PROVIDER, SAFE_MESSAGES["BadRequest.VoiceNotFound"], provider_code="BadRequest.VoiceNotFound"
        )

    async def list(self) -> Sequence[ProviderVoice]:
        """Every enrolled voice, across pages (``page_index`` is 0-based)."""
        voices: list[ProviderVoice] = []
        page_index = 0
        while True:
            payload = {
                "model": ENROLMENT_MODEL,
                "input": {"action": "list", "page_size": LIST_PAGE_SIZE, "page_index": page_index},
            }
            body, _ = await self._http.json("POST", CUSTOMIZATION_PATH, _ListResponse, json=payload)
            items = body.output.voice_list
            voices.extend(self._voice(item) for item in items)
            total = body.output.total_count
            if not items or (total is not None and len(voices) >= total):
                return voices
            page_index += 1

    def _voice(self, item: _ListItem) -> ProviderVoice:
        return ProviderVoice(
            provider=PROVIDER,
            voice_id=item.voice,
            target_model=item.target_model,
            language=item.language,
            created_at=item.gmt_create,
            metadata={"region": self.region, "gmt_modified": item.gmt_modified},
        )

    async def delete(self, voice_id: str) -> None:
        """Delete a voice; a missing one raises ``VoiceNotFoundError`` (``BadRequest.VoiceNotFound``)."""
        payload = {"model": ENROLMENT_MODEL, "input": {"action": "delete", "voice": voice_id}}
        await self._http.json("POST", CUSTOMIZATION_PATH, _DeleteResponse, json=payload)

    async def synthesize(self, voice: ProviderVoice, text: str, *, meter: SendMeter | None = None) -> SynthesisResult:
        """Speak with the voice's own ``target_model`` (a VC voice works only with that model). A model
        DashScope no longer serves, or a voice it does not know for that model, raises the error that says the
        voice must be enrolled again (``_voice_gone``)."""
        model = voice.target_model or self.target_model
        payload = {"model": model, "input": {"text": text, "voice": voice.voice_id}}
        with _voice_gone():
            body, _ = await self._http.json("POST", GENERATION_PATH, _SynthesisResponse, json=payload, meter=meter)
        audio = body.output.audio
        if audio.data:
            data = base64.b64decode(audio.data)
        elif audio.url:
            # The URL is a pre-signed object link: send no DashScope credentials to it.
            response = await self._http.request("GET", audio.url, authenticated=False)
            data = response.content
        else:
            raise TransientProviderError(PROVIDER, "The voice provider returned no audio.", request_id=body.request_id)
        return SynthesisResult(audio=data, mime_type="audio/wav", request_id=body.request_id, model=model)

    async def stream(
        self, voice: ProviderVoice, text: str, *, meter: SendMeter | None = None
    ) -> AsyncGenerator[bytes, None]:
        """The same generation call with ``X-DashScope-SSE: enable``: every event carries the next piece of
        audio as base64 PCM (24 kHz, 16-bit, mono) in ``output.audio.data``. An error, answered before the
        audio (an SSE error body with a non-2xx status) or as an ``error`` event midway, is classified like an
        error answer, with the same retired-model and missing-voice mapping as ``synthesize``."""
        model = voice.target_model or self.target_model
        payload = {"model": model, "input": {"text": text, "voice": voice.voice_id}}
        headers = {"X-DashScope-SSE": "enable", "Accept": "text/event-stream"}
        with _voice_gone():
            async with self._http.streaming(
                "POST", GENERATION_PATH, json=payload, headers=headers, meter=meter
            ) as response:
                async for event in _sse_events(self._http.body(response)):
                    chunk = _event_audio(event, response)
                    if chunk:
                        yield chunk


def _event_audio(event: _SseEvent, response: httpx.Response) -> bytes:
    """The PCM an event of a 2xx stream carries. An ``error`` event, or one whose data has a ``code`` (how the
    SDK tells a failure on an HTTP 200 stream: ``dashscope/v2/resources/audio/http_tts.py`` ``_SSEDecoder``),
    raises the error it stands for, with the event's own status or else the stream's."""
    body = _decoded(event.data, _StreamEvent)
    if event.name == "error" or (body is not None and body.code):
        error = body or _ErrorBody(message=event.data[:200])
        raise _answer_error(event.status or response.status_code, error, response)
    if body is None:
        raise _unreadable(f"not a DashScope event: {event.data[:200]!r}")
    audio = body.output.audio if body.output is not None else None
    try:
        return base64.b64decode(audio.data, validate=True) if audio is not None and audio.data else b""
    except ValueError as exc:
        raise _unreadable(str(exc)) from exc


def _unreadable(detail: str) -> TransientProviderError:
    return TransientProviderError(PROVIDER, "The voice provider sent an unreadable answer.", operator_detail=detail)


async def _sse_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[_SseEvent]:
    """Server-sent events from a byte stream, as they complete."""
    decoder = _SseDecoder()
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            event = decoder.feed(raw.rstrip(b"\r").decode("utf-8", errors="replace"))
            if event is not None:
                yield event
    for line in (buffer.rstrip(b"\r").decode("utf-8", errors="replace"), ""):
        event = decoder.feed(line)
        if event is not None:
            yield event
