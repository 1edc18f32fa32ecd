"""ElevenLabs Instant Voice Cloning and text-to-speech."""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Final

import httpx
import msgspec

from backend.providers.base import (
    STREAM_SAMPLE_RATE,
    ProviderVoice,
    SampleRef,
    SampleRules,
    SendMeter,
    SynthesisResult,
    primary_language,
)
from backend.providers.enrolment import enrol_once, key_marker
from backend.providers.env import key_setting, url_setting
from backend.providers.errors import PermanentProviderError, ProviderError, VoiceNotFoundError, answer_fields
from backend.providers.http import TRANSIENT_STATUSES, ProviderHttp, RetryPolicy, busy, has_audio, text_or_none
from backend.providers.slots import ProviderSlots
from backend.secret import Secret
from backend.wav import pcm16_to_wav, with_comment

PROVIDER: Final = "elevenlabs"

ELEVENLABS_DEFAULT_URL: Final = "https://api.elevenlabs.io"


class ElevenLabsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """ElevenLabs access."""

    api_key: Secret | None
    base_url: str


def settings_from_env(env: Mapping[str, str]) -> ElevenLabsSettings:
    """This provider's settings, checked; ProviderConfigError names the variable that does not fit."""
    api_key = key_setting("ELEVENLABS_API_KEY", env.get("ELEVENLABS_API_KEY"))
    base_url, _ = url_setting("ELEVENLABS_BASE_URL", env.get("ELEVENLABS_BASE_URL") or ELEVENLABS_DEFAULT_URL)
    return ElevenLabsSettings(api_key=api_key, base_url=base_url)


KEY_LABEL: Final = "voicegate_key"
DEFAULT_MODEL: Final = "eleven_multilingual_v2"
DEFAULT_OUTPUT_FORMAT: Final = "mp3_44100_128"
STREAM_OUTPUT_FORMAT: Final = f"pcm_{STREAM_SAMPLE_RATE}"
LIST_PAGE_SIZE: Final = 100
OUTPUT_MIME_TYPES: Final = {"mp3": "audio/mpeg", "opus": "audio/ogg", "ulaw": "audio/basic", "alaw": "audio/x-alaw"}

SAMPLE_RULES: Final = SampleRules(
    formats=frozenset({"audio/mpeg", "audio/wav", "audio/mp4", "audio/flac", "audio/ogg", "audio/webm"}),
    min_duration_s=3.0,
    # IVC guidance: about 1-2 minutes total; more than 3 minutes gives little or worse results.
    max_duration_s=180.0,
    recommended_duration_s=(60.0, 120.0),
    min_sample_rate=None,
    preferred_sample_rate=44100,
    # Size and file-count limits are undocumented; 10 MB per file stays clear of observed rejections.
    max_bytes=10 * 1024 * 1024,
    max_files=25,
    mono=False,
)

VOICE_NOT_FOUND_CODES: Final = frozenset({"voice_not_found", "voice_does_not_exist"})
SAFE_MESSAGES: Final = {
    "invalid_api_key": "The provider rejected the configured credentials.",
    "quota_exceeded": "The provider account's credit quota is used up.",
    "voice_limit_reached": "The provider account has no free custom-voice slot; delete unused voices.",
    "voice_not_found": "The voice does not exist at the provider.",
    "voice_does_not_exist": "The voice does not exist at the provider.",
    "max_character_limit_exceeded": "The text is too long for the provider.",
    "can_not_use_instant_voice_cloning": "The provider subscription does not include voice cloning.",
    "duplicate_files": "The same sample file was uploaded twice.",
    "validation_error": "The provider rejected the request as invalid.",
}


def classify(response: httpx.Response) -> ProviderError:
    """Map both ``detail`` shapes, the FastAPI 422 list and bare 5xx bodies to an error class."""
    code, message, request_id = _error_fields(response)
    status = response.status_code
    common = answer_fields(status, code, message, request_id or response.headers.get("request-id"))
    if code in VOICE_NOT_FOUND_CODES:
        return VoiceNotFoundError(PROVIDER, SAFE_MESSAGES[code], **common)
    if status in TRANSIENT_STATUSES:
        return busy(PROVIDER, response, common)
    # quota_exceeded arrives as 401 but is a billing problem, not a bad key: the code decides.
    safe = SAFE_MESSAGES.get(code or "")
    if safe is None:
        safe = SAFE_MESSAGES["invalid_api_key"] if status == 401 else "The voice provider rejected the request."
    return PermanentProviderError(PROVIDER, safe, **common)


def _error_fields(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.MsgspecError:
        return None, response.text[:200], None
    if not isinstance(body, dict):
        return None, None, None
    detail = body.get("detail")
    if isinstance(detail, dict):
        code = detail.get("code") or detail.get("status")
        return text_or_none(code), text_or_none(detail.get("message")), text_or_none(detail.get("request_id"))
    if isinstance(detail, list):
        # FastAPI validation list: [{"loc": [...], "msg": ..., "type": ...}]
        msgs = [str(item.get("msg")) for item in detail if isinstance(item, dict)]
        return "validation_error", "; ".join(msgs), None
    return text_or_none(body.get("status")), text_or_none(body.get("message")), None


class _AddVoiceResponse(msgspec.Struct):
    voice_id: str
    requires_verification: bool = False


class _Voice(msgspec.Struct):
    voice_id: str
    name: str | None = None
    category: str | None = None
    labels: dict[str, str] | None = None
    description: str | None = None
    created_at_unix: int | None = None
    high_quality_base_model_ids: list[str] | None = None


class _VoicePage(msgspec.Struct):
    voices: list[_Voice]
    has_more: bool = False
    next_page_token: str | None = None


class _DeleteResponse(msgspec.Struct):
    status: str | None = None


class ElevenLabsProvider:
    """Adapter for IVC ``/v1/voices/add``, voice get/list(v2)/delete, ``/v1/text-to-speech`` and its
    ``/stream``."""

    name = PROVIDER
    sample_rules = SAMPLE_RULES

    def __init__(
        self,
        settings: ElevenLabsSettings,
        client: httpx.AsyncClient,
        *,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        create_timeout: httpx.Timeout | None = None,
        model_id: str = DEFAULT_MODEL,
        output_format: str = DEFAULT_OUTPUT_FORMAT,
        page_size: int = LIST_PAGE_SIZE,
        slots: ProviderSlots | None = None,
    ) -> None:
        if settings.api_key is None:
            raise ValueError("ElevenLabsProvider needs ELEVENLABS_API_KEY")
        self.model_id = model_id
        self.output_format = output_format
        self.page_size = page_size
        self._http = ProviderHttp(
            PROVIDER,
            client,
            settings.base_url,
            {"xi-api-key": settings.api_key.reveal()},
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
        """IVC create with the enrolment key in ``labels`` and as a marker in ``description``.

        ``remove_background_noise`` is asked for only when a sample's quality report measured background noise
        (``SampleRef.noisy``): the SDK documents that the isolation model "can make the quality worse" of
        samples without any. The choice, and the lowest SNR measured, go into the voice's metadata, which the
        attempt records.
        """
        self.sample_rules.check(PROVIDER, samples, language)
        labels = {KEY_LABEL: key}
        if language:
            labels["language"] = primary_language(language)
        denoise = any(sample.noisy for sample in samples)
        measured = [sample.snr_db for sample in samples if sample.snr_db is not None]
        choice = {"remove_background_noise": denoise, "sample_snr_db": min(measured, default=None)}
        data = {
            "name": name,
            "description": f"voicegate voice {key_marker(key)}",
            "remove_background_noise": "true" if denoise else "false",
            "labels": msgspec.json.encode(labels).decode(),
        }
        # ElevenLabs refuses a file it has been sent before, even for a voice since deleted: enrolling the
        # same samples again (another set of a voice, a re-enrolment) sends them tagged with this key.
        files = [("files", (s.filename, with_comment(s.data, f"voicegate {key}"), s.mime_type)) for s in samples]

        async def create() -> ProviderVoice:
            body, response = await self._http.json(
                "POST", "/v1/voices/add", _AddVoiceResponse, idempotent=False, data=data, files=files
            )
            return ProviderVoice(
                provider=PROVIDER,
                voice_id=body.voice_id,
                name=name,
                enrolment_key=key,
                request_id=response.headers.get("request-id"),
                language=labels.get("language"),
                metadata={"requires_verification": body.requires_verification, "labels": labels},
            )

        voice = await enrol_once(key, self.find, create)
        # A voice adopted after a lost answer was made from these same samples, so with this same choice.
        return msgspec.structs.replace(voice, metadata={**voice.metadata, **choice})

    async def find(self, key: str) -> ProviderVoice | None:
        """The cloned voice labelled (or, failing that, described) with this enrolment key."""
        marker = key_marker(key)
        for voice in await self.list():
            labels = voice.metadata.get("labels") or {}
            if labels.get(KEY_LABEL) == key or marker in (voice.metadata.get("description") or ""):
                return msgspec.structs.replace(voice, enrolment_key=key)
        return None

    async def get(self, voice_id: str) -> ProviderVoice:
        """One voice; ``voice_not_found`` (400 or 404) raises ``VoiceNotFoundError``."""
        body, response = await self._http.json("GET", f"/v1/voices/{voice_id}", _Voice)
        return self._voice(body, response.headers.get("request-id"))

    async def list(self) -> Sequence[ProviderVoice]:
        """The account's own cloned voices, through every page of ``GET /v2/voices``."""
        voices: list[ProviderVoice] = []
        params: dict[str, Any] = {
            "page_size": self.page_size,
            "voice_type": "personal",
            "category": "cloned",
            "include_total_count": "false",
        }
        while True:
            page, _ = await self._http.json("GET", "/v2/voices", _VoicePage, params=params)
            voices.extend(self._voice(v, None) for v in page.voices)
            if not page.has_more or not page.next_page_token:
                return voices
            params["next_page_token"] = page.next_page_token

    def _voice(self, voice: _Voice, request_id: str | None) -> ProviderVoice:
        labels = voice.labels or {}
        return ProviderVoice(
            provider=PROVIDER,
            voice_id=voice.voice_id,
            name=voice.name,
            enrolment_key=labels.get(KEY_LABEL),
            request_id=request_id,
            language=labels.get("language"),
            created_at=str(voice.created_at_unix) if voice.created_at_unix is not None else None,
            metadata={"category": voice.category, "labels": labels, "description": voice.description},
        )

    async def delete(self, voice_id: str) -> None:
        """Delete a voice; a missing one raises ``VoiceNotFoundError``."""
        await self._http.json("DELETE", f"/v1/voices/{voice_id}", _DeleteResponse)

    async def synthesize(self, voice: ProviderVoice, text: str, *, meter: SendMeter | None = None) -> SynthesisResult:
        """``POST /v1/text-to-speech/{voice_id}``; PCM formats are wrapped into WAV."""
        response = await self._http.request(
            "POST",
            f"/v1/text-to-speech/{voice.voice_id}",
            params={"output_format": self.output_format},
            json={"text": text, "model_id": self.model_id},
            validate=has_audio,
            meter=meter,
        )
        kind, _, rest = self.output_format.partition("_")
        rate = int(rest.split("_")[0]) if rest else None
        audio, mime = response.content, OUTPUT_MIME_TYPES.get(kind, "application/octet-stream")
        if kind == "pcm" and rate is not None:
            audio, mime = pcm16_to_wav(audio, rate), "audio/wav"
        return SynthesisResult(
            audio=audio,
            mime_type=mime,
            sample_rate=rate,
            request_id=response.headers.get("request-id"),
            model=self.model_id,
        )

    async def stream(
        self, voice: ProviderVoice, text: str, *, meter: SendMeter | None = None
    ) -> AsyncGenerator[bytes, None]:
        """``POST /v1/text-to-speech/{voice_id}/stream`` as ``pcm_24000``: raw PCM, chunked as it is made."""
        async with self._http.streaming(
            "POST",
            f"/v1/text-to-speech/{voice.voice_id}/stream",
            params={"output_format": STREAM_OUTPUT_FORMAT},
            json={"text": text, "model_id": self.model_id},
            meter=meter,
        ) as response:
            async for chunk in self._http.body(response):
                yield chunk
