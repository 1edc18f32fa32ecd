"""Cartesia voice cloning and ``/tts/bytes`` synthesis, pinned to one ``Cartesia-Version``.

A voice is cloned for ``CARTESIA_MODEL`` (``sonic-3.5`` by default), or, when that model lacks the voice's
language, for one that has it (``cartesia_models.model_for``); it records that model (its ``target_model``)
and is spoken with it. When Cartesia sunsets the model, or the voice's language on it (``model_sunsetted``,
e.g. ``sonic-2-2025-03-07``, or Italian on ``sonic-2``, since 2026-06-01), synthesis raises
``ModelRetiredError``, and an unknown voice raises ``VoiceNotFoundError`` (404 from ``2026-03-01``): both
mean the voice must be cloned again from its sample, which picks a current model.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

import httpx
import msgspec

from backend.providers import cartesia_models
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
from backend.providers.env import ProviderConfigError, choice_setting, key_setting, url_setting
from backend.providers.errors import (
    ModelRetiredError,
    PermanentProviderError,
    ProviderError,
    UnsupportedLanguageError,
    VoiceNotFoundError,
    answer_fields,
)
from backend.providers.http import TRANSIENT_STATUSES, ProviderHttp, RetryPolicy, busy, has_audio
from backend.providers.slots import ProviderSlots
from backend.secret import Secret

PROVIDER: Final = "cartesia"

CARTESIA_DEFAULT_URL: Final = "https://api.cartesia.ai"
# Versions whose clone/list/TTS field sets the Cartesia adapter speaks (older ones need `mode`,
# return plain arrays from GET /voices and use X-API-Key).
CARTESIA_VERSIONS: Final = ("2025-04-16", "2026-03-01")
# 2026-03-01: JSON errors and 404 for an unknown voice, which lets a lost voice be told from a bad request.
CARTESIA_DEFAULT_VERSION: Final = "2026-03-01"


class CartesiaSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Cartesia access, pinned to one API version; ``model`` clones and speaks new voices, unless it lacks a
    voice's language (``backend.providers.cartesia_models`` then picks one that has it)."""

    api_key: Secret | None
    base_url: str
    version: str
    model: str


def settings_from_env(env: Mapping[str, str]) -> CartesiaSettings:
    """This provider's settings, checked; ProviderConfigError names the variable that does not fit."""
    api_key = key_setting("CARTESIA_API_KEY", env.get("CARTESIA_API_KEY"), prefix="sk_car_")
    if api_key is not None and api_key.reveal().startswith("sk_car_admin_"):
        raise ProviderConfigError("CARTESIA_API_KEY is an admin key; voice and TTS routes need a standard key")
    base_url, _ = url_setting("CARTESIA_BASE_URL", env.get("CARTESIA_BASE_URL") or CARTESIA_DEFAULT_URL)
    version = choice_setting(env, "CARTESIA_VERSION", CARTESIA_VERSIONS, CARTESIA_DEFAULT_VERSION)
    model = env.get("CARTESIA_MODEL", "").strip() or cartesia_models.RECOMMENDED
    if model in cartesia_models.SUNSET:
        raise ProviderConfigError(
            f"CARTESIA_MODEL {model!r} was sunset by Cartesia; use {cartesia_models.RECOMMENDED!r}"
        )
    if cartesia_models.family(model) is None:
        # Its languages are unknown, so no voice could be told which model speaks it.
        raise ProviderConfigError(
            f"CARTESIA_MODEL must be one of {', '.join(cartesia_models.FAMILIES)} or one of their dated snapshots"
        )
    return CartesiaSettings(api_key=api_key, base_url=base_url, version=version, model=model)


OUTPUT_SAMPLE_RATE: Final = 24000
LIST_PAGE_SIZE: Final = 100

SAMPLE_RULES: Final = SampleRules(
    formats=frozenset(
        {"audio/flac", "audio/mpeg", "audio/ogg", "audio/wav", "audio/webm", "audio/x-wav", "audio/x-flac"}
    ),
    min_duration_s=3.0,
    # No documented maximum; the guides ask for about 5-10 s and say longer clips do not help.
    max_duration_s=60.0,
    recommended_duration_s=(5.0, 10.0),
    min_sample_rate=None,
    preferred_sample_rate=44100,
    max_bytes=10 * 1024 * 1024,
    max_files=1,
    mono=False,
    languages=cartesia_models.LANGUAGES,
)

SAFE_MESSAGES: Final = {
    401: "The provider rejected the configured credentials.",
    402: "The provider account's credit is used up.",
    403: "The provider account is not allowed to do this.",
    404: "The voice does not exist at the provider.",
}
MODEL_SUNSET_CODE: Final = "model_sunsetted"
# Before 2026-03-01 errors are `Title: Message` text without a code: the JSON answer's title tells a sunset.
MODEL_SUNSET_TITLE: Final = "Model sunsetted"


class _ErrorBody(msgspec.Struct):
    error_code: str | None = None
    title: str | None = None
    message: str | None = None
    request_id: str | None = None


def _error_fields(response: httpx.Response) -> _ErrorBody:
    """JSON errors (2026-03-01 and newer) or plain ``Title: Message`` text (older versions)."""
    try:
        body = msgspec.json.decode(response.content, type=_ErrorBody)
    except msgspec.MsgspecError:
        text = response.text.strip()
        title, sep, message = text.partition(": ")
        return _ErrorBody(title=title if sep else None, message=message if sep else text[:200])
    return body


def classify(response: httpx.Response) -> ProviderError:
    """Map a Cartesia error answer to an error class."""
    body = _error_fields(response)
    status = response.status_code
    common = answer_fields(status, body.error_code or body.title, body.message, body.request_id)
    if status in TRANSIENT_STATUSES:
        return busy(PROVIDER, response, common)
    if body.error_code == MODEL_SUNSET_CODE or (body.error_code is None and body.title == MODEL_SUNSET_TITLE):
        return ModelRetiredError(PROVIDER, "The voice's model is retired at the provider.", **common)
    safe = SAFE_MESSAGES.get(status, "The voice provider rejected the request.")
    return PermanentProviderError(PROVIDER, safe, **common)


@contextmanager
def _404_is_not_found(*, synthesis: bool = False) -> Iterator[None]:
    """A 404 means the voice is gone; on synthesis, unless it is about the model (a retired model is
    `ModelRetiredError` already)."""
    try:
        yield
    except PermanentProviderError as exc:
        about_model = exc.provider_code == "model_not_found" or isinstance(exc, ModelRetiredError)
        if exc.http_status == 404 and not (synthesis and about_model):
            raise exc.recast(VoiceNotFoundError, SAFE_MESSAGES[404]) from exc
        raise


class _Voice(msgspec.Struct):
    id: str
    name: str | None = None
    description: str | None = None
    language: str | None = None
    created_at: str | None = None
    user_id: str | None = None
    is_owner: bool | None = None


class _VoicePage(msgspec.Struct):
    """A page of ``GET /voices``; ``has_more`` and ``next_page`` (2025-04-16) are not read: the SDK's pager
    (``AsyncCursorIDPage``) knows only ``data``."""

    data: list[_Voice]


class CartesiaProvider:
    """Adapter for ``/voices/clone``, ``/voices`` and ``/tts/bytes``."""

    name = PROVIDER
    sample_rules = SAMPLE_RULES

    def __init__(
        self,
        settings: CartesiaSettings,
        client: httpx.AsyncClient,
        *,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        create_timeout: httpx.Timeout | None = None,
        slots: ProviderSlots | None = None,
    ) -> None:
        if settings.api_key is None:
            raise ValueError("CartesiaProvider needs CARTESIA_API_KEY")
        self.model_id = settings.model
        self.version = settings.version
        self._http = ProviderHttp(
            PROVIDER,
            client,
            settings.base_url,
            {"Authorization": f"Bearer {settings.api_key.reveal()}", "Cartesia-Version": settings.version},
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
        """Clone from one clip for the model that speaks its language; the enrolment key rides as a marker in
        ``description``."""
        self.sample_rules.check(PROVIDER, samples, language or "en")
        lang = primary_language(language or "en")
        model = self.model_for(lang)
        sample = samples[0]
        data = {"name": name, "language": lang, "description": f"voicegate voice {key_marker(key)}"}
        files = {"clip": (sample.filename, sample.data, sample.mime_type)}

        async def create() -> ProviderVoice:
            body, _ = await self._http.json("POST", "/voices/clone", _Voice, idempotent=False, data=data, files=files)
            return msgspec.structs.replace(self._voice(body), enrolment_key=key, target_model=model)

        return await enrol_once(key, self.find, create)

    async def find(self, key: str) -> ProviderVoice | None:
        """The owned voice whose description carries this key's marker."""
        marker = key_marker(key)
        for voice in await self.list():
            if marker in (voice.metadata.get("description") or ""):
                return msgspec.structs.replace(voice, enrolment_key=key, target_model=self.model_for(voice.language))
        return None

    def model_for(self, language: str | None) -> str:
        """The model a voice in ``language`` is cloned and spoken with: ``CARTESIA_MODEL`` when it speaks the
        language, else a current one that does; ``UnsupportedLanguageError`` when none does."""
        lang = primary_language(language or "en")
        model = cartesia_models.model_for(self.model_id, lang)
        if model is None:
            raise UnsupportedLanguageError.naming(
                PROVIDER, f"Language {language!r} is not spoken by any Cartesia model", cartesia_models.LANGUAGES
            )
        return model

    async def get(self, voice_id: str) -> ProviderVoice:
        """One voice; 404 raises ``VoiceNotFoundError``."""
        with _404_is_not_found():
            body, _ = await self._http.json("GET", f"/voices/{voice_id}", _Voice)
        return self._voice(body)

    async def list(self) -> Sequence[ProviderVoice]:
        """Owned voices across every page, paged as the SDK pages: the last id as ``starting_after`` until a
        page comes back empty (a page's ``has_more`` is not trusted: 2026-03-01 pages need not carry it)."""
        voices: list[ProviderVoice] = []
        params: dict[str, Any] = {"limit": LIST_PAGE_SIZE, "is_owner": "true"}
        while True:
            page, _ = await self._http.json("GET", "/voices", _VoicePage, params=params)
            if not page.data:
                return voices
            voices.extend(self._voice(v) for v in page.data)
            cursor = page.data[-1].id
            if cursor == params.get("starting_after"):
                # The same page again would be asked for forever.
                raise PermanentProviderError(PROVIDER, "The provider's voice list does not advance.")
            params["starting_after"] = cursor

    def _voice(self, voice: _Voice) -> ProviderVoice:
        return ProviderVoice(
            provider=PROVIDER,
            voice_id=voice.id,
            name=voice.name,
            language=voice.language,
            created_at=voice.created_at,
            # The language rides along because a voice read back from the database has only its metadata.
            metadata={"description": voice.description, "cartesia_version": self.version, "language": voice.language},
        )

    async def delete(self, voice_id: str) -> None:
        """``DELETE /voices/{id}`` (204); 404 raises ``VoiceNotFoundError``."""
        with _404_is_not_found():
            await self._http.request("DELETE", f"/voices/{voice_id}")

    async def synthesize(self, voice: ProviderVoice, text: str, *, meter: SendMeter | None = None) -> SynthesisResult:
        """``POST /tts/bytes`` asking for 16-bit WAV, with the model the voice was cloned for; an unknown
        voice raises ``VoiceNotFoundError``, a sunset model ``ModelRetiredError``."""
        payload = self._tts_payload(voice, text, {"container": "wav", "encoding": "pcm_s16le"}, OUTPUT_SAMPLE_RATE)
        with _404_is_not_found(synthesis=True):
            response = await self._http.request("POST", "/tts/bytes", json=payload, validate=has_audio, meter=meter)
        return SynthesisResult(
            audio=response.content,
            mime_type="audio/wav",
            sample_rate=OUTPUT_SAMPLE_RATE,
            request_id=response.headers.get("x-request-id") or response.headers.get("request-id"),
            model=payload["model_id"],
        )

    async def stream(
        self, voice: ProviderVoice, text: str, *, meter: SendMeter | None = None
    ) -> AsyncGenerator[bytes, None]:
        """``POST /tts/bytes`` in the ``raw`` container: its body streams the PCM as it is generated."""
        payload = self._tts_payload(voice, text, {"container": "raw", "encoding": "pcm_s16le"}, STREAM_SAMPLE_RATE)
        with _404_is_not_found(synthesis=True):
            async with self._http.streaming("POST", "/tts/bytes", json=payload, meter=meter) as response:
                async for chunk in self._http.body(response):
                    yield chunk

    def _tts_payload(self, voice: ProviderVoice, text: str, container: dict[str, str], rate: int) -> dict[str, Any]:
        language = voice.language or voice.metadata.get("language")
        payload: dict[str, Any] = {
            # A voice is spoken with the model it was cloned for; a voice that recorded none, with the one
            # its language would be cloned for now.
            "model_id": voice.target_model or self.model_for(language),
            "transcript": text,
            # `mode: id`: the 2026-03-01 shape (docs' API-changes page); the SDK's voice object allows it.
            "voice": {"mode": "id", "id": voice.voice_id},
            "output_format": {**container, "sample_rate": rate},
        }
        if language:
            payload["language"] = language
        return payload
