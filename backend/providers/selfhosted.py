"""The `selfhosted` provider: a server of one's own that speaks the OpenAI-shaped speech API
(vLLM-Omni serving Qwen3-TTS-Base, chatterbox-tts-api and others), directly or deployed on Modal.

Three ways a server keeps voices, chosen by `SELFHOSTED_VOICE_REGISTRY` (`auto` asks the server):
  * registry: `POST /v1/audio/voices` (multipart `audio_sample`, `name`, `consent`, `ref_text`),
    `GET /v1/audio/voices`, `DELETE /v1/audio/voices/{id}`; synthesis names the voice;
  * chatterbox (chatterbox-tts-api: 404 on `/v1/audio/voices`, a library at `/v1/voices`): `POST
    /v1/voices` (multipart `voice_file`, `voice_name`, `language`), `GET /v1/voices[/{name}]`, `DELETE
    /v1/voices/{name}`; synthesis names the voice, which is looked up first because the server speaks
    its default voice for a name it does not know; it answers WAV only, streamed from
    `/v1/audio/speech/stream`;
  * inline (neither registry): the voice is the stored reference (see `selfhosted_store`), sent as
    `ref_audio` (a data URL) with its `ref_text` on every synthesis, once the server has shown it reads
    `ref_audio` (a server that drops the unknown field would speak its default voice with a 200).
A WAV answer is read, never passed on as PCM: its header is parsed and its samples checked.
A voice is named `voicegate_<digest of its enrolment key>`, so a create whose answer was lost is found
by name before another is sent, and the reconcile script knows the voice for voicegate's.

The Modal profile adds what a Modal web endpoint needs: proxy auth (`Modal-Key`, `Modal-Secret`), a
303 to the result of a request that runs past Modal's 150 s, polled until it is ready, timeouts long
enough for a cold start (the model loads before the first answer), and a warm-up request before an
enrolment. A 303 is followed only within the configured origin, so credentials never travel elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote, urljoin, urlsplit

import httpx
import msgspec

from backend.providers.base import (
    ProviderVoice,
    SampleRef,
    SampleRules,
    SendMeter,
    SynthesisResult,
    primary_language,
)
from backend.providers.enrolment import enrol_once, selfhosted_voice_name
from backend.providers.env import ProviderConfigError, choice_setting, key_setting, url_setting
from backend.providers.errors import (
    PermanentProviderError,
    TransientProviderError,
    VoiceNotFoundError,
    answer_fields,
)
from backend.providers.http import ProviderHttp, RetryPolicy, has_audio, text_or_none
from backend.providers.selfhosted_answers import (
    NOT_FOUND,
    PROVIDER,
    SeeOther,
    classify,
    created_voice,
    data_url,
    is_wav,
    listed_voices,
    pcm_of,
    unplayable,
    unreadable,
    voice_key,
)
from backend.providers.selfhosted_store import InlineEntry, InlineVoice, InMemoryReferenceStore, ReferenceStore
from backend.providers.slots import ProviderSlots
from backend.secret import Secret
from backend.wav import pcm16_to_wav, wav_to_pcm16

log = logging.getLogger(__name__)


SELFHOSTED_REGISTRY_MODES: Final = ("auto", "registry", "chatterbox", "inline")
SELFHOSTED_PROFILES: Final = ("openai", "modal")
#: Seconds a self-hosted call may take in all (polling included): a Modal cold start loads a model first.
SELFHOSTED_DEFAULT_TIMEOUT: Final = {"openai": 120.0, "modal": 600.0}
SELFHOSTED_MAX_TIMEOUT: Final = 3600.0


class SelfhostedSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A server speaking the OpenAI-shaped speech API; usable once ``base_url`` is set.

    ``voice_registry``: ``registry`` enrols through ``/v1/audio/voices`` (OpenAI's, vLLM-Omni's),
    ``chatterbox`` through chatterbox-tts-api's ``/v1/voices``, ``inline`` keeps the reference and sends it
    with every synthesis (once the server has shown it reads it), ``auto`` asks the server which it is.
    ``profile``: ``modal`` adds Modal's proxy-auth headers, 303 polling and cold-start timeouts.
    """

    base_url: str | None
    api_key: Secret | None
    model: str | None
    voice_registry: str
    profile: str
    modal_key: Secret | None
    modal_secret: Secret | None
    timeout_s: float


def settings_from_env(env: Mapping[str, str]) -> SelfhostedSettings:
    """This provider's settings, checked; ProviderConfigError names the variable that does not fit."""
    raw_url = env.get("SELFHOSTED_BASE_URL", "").strip()
    base_url = url_setting("SELFHOSTED_BASE_URL", raw_url, path=True)[0] if raw_url else None
    profile = choice_setting(env, "SELFHOSTED_PROFILE", SELFHOSTED_PROFILES, "openai")
    modal_key = key_setting("MODAL_KEY", env.get("MODAL_KEY"))
    modal_secret = key_setting("MODAL_SECRET", env.get("MODAL_SECRET"))
    if (modal_key is None) != (modal_secret is None):
        raise ProviderConfigError("set both MODAL_KEY and MODAL_SECRET (Modal's proxy auth), or neither")
    if modal_key is not None and profile != "modal":
        raise ProviderConfigError("MODAL_KEY and MODAL_SECRET are used only with SELFHOSTED_PROFILE=modal")
    model = env.get("SELFHOSTED_MODEL", "").strip() or None
    if model is not None and (len(model) > 200 or not model.isprintable()):
        raise ProviderConfigError("SELFHOSTED_MODEL must be a model name of at most 200 printable characters")
    raw_timeout = env.get("SELFHOSTED_TIMEOUT_SECONDS", "").strip()
    try:
        timeout = float(raw_timeout) if raw_timeout else SELFHOSTED_DEFAULT_TIMEOUT[profile]
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= SELFHOSTED_MAX_TIMEOUT:
        raise ProviderConfigError(
            f"SELFHOSTED_TIMEOUT_SECONDS must be a positive number of seconds, at most {SELFHOSTED_MAX_TIMEOUT:g}"
        )
    return SelfhostedSettings(
        base_url=base_url,
        api_key=key_setting("SELFHOSTED_API_KEY", env.get("SELFHOSTED_API_KEY")),
        model=model,
        voice_registry=choice_setting(env, "SELFHOSTED_VOICE_REGISTRY", SELFHOSTED_REGISTRY_MODES, "auto"),
        profile=profile,
        modal_key=modal_key,
        modal_secret=modal_secret,
        timeout_s=timeout,
    )


VOICES_PATH: Final = "/v1/audio/voices"
SPEECH_PATH: Final = "/v1/audio/speech"
#: chatterbox-tts-api's voice library and streaming route (app/core/aliases.py maps them under /v1).
CHATTERBOX_VOICES_PATH: Final = "/v1/voices"
CHATTERBOX_STREAM_PATH: Final = "/v1/audio/speech/stream"
#: The `voice_file` extensions chatterbox-tts-api takes (SUPPORTED_VOICE_FORMATS), by the sample's type.
CHATTERBOX_SUFFIXES: Final = {
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "audio/flac": "flac",
    "audio/ogg": "ogg",
    "audio/mp4": "m4a",
}
#: What the inline probe sends as its reference: bytes that are no audio, which a server reading
#: `ref_audio` must refuse.
NOT_AUDIO: Final = b"voicegate probe: this reference is not audio"
PROBE_TEXT: Final = "Hello."
#: Seconds before a server found to ignore `ref_audio` is asked again (each failed probe costs it a synthesis).
INLINE_RECHECK_S: Final = 60.0
#: vLLM-Omni sends audio as it is made only when asked for raw bytes (`stream_format: "audio"`); otherwise the
#: whole clip comes back at its end. Its releases before `stream_format` chose the answer streamed on
#: `stream: true`, which today alone means server-sent events: both together ask every release for raw bytes.
#: A server without these fields (OpenAI-shaped, pydantic) ignores them.
STREAM_AUDIO: Final = {"stream_format": "audio", "stream": True}
#: Modal answers a request still running after 150 s with a 303; a read waits a little longer than that.
MODAL_READ_TIMEOUT_S: Final = 160.0
#: The longest pause between two polls of a result that is not ready.
MAX_POLL_PAUSE_S: Final = 1.0

SAMPLE_RULES: Final = SampleRules(
    formats=frozenset({"audio/wav", "audio/mpeg", "audio/flac", "audio/ogg", "audio/webm", "audio/mp4"}),
    # Qwen3-TTS clones from 3 s; Chatterbox wants more than 5 s. Long references slow every inline call.
    min_duration_s=3.0,
    max_duration_s=60.0,
    recommended_duration_s=(5.0, 15.0),
    min_sample_rate=16000,
    preferred_sample_rate=24000,
    # `audio_sample` is at most 10 MiB on vLLM-Omni and OpenAI's custom-voice API.
    max_bytes=10 * 1024 * 1024,
    max_files=1,
    mono=True,
)


class SelfhostedProvider:
    """Adapter for an OpenAI-shaped speech server, with a voice registry or references sent inline."""

    name = PROVIDER
    sample_rules = SAMPLE_RULES

    def __init__(
        self,
        settings: SelfhostedSettings,
        client: httpx.AsyncClient,
        *,
        store: ReferenceStore | None = None,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        slots: ProviderSlots | None = None,
    ) -> None:
        if settings.base_url is None:
            raise ValueError("SelfhostedProvider needs SELFHOSTED_BASE_URL")
        self.model = settings.model
        self.profile = settings.profile
        self.deadline_s = settings.timeout_s
        self._store: ReferenceStore = store if store is not None else InMemoryReferenceStore()
        self._clock = clock
        self._resolved: str | None = None if settings.voice_registry == "auto" else settings.voice_registry
        # What the inline probe found (see `_check_reads_reference`), kept for this process.
        self._reads_reference = False
        self._ignored_until = float("-inf")
        self._origin = urlsplit(settings.base_url)
        read = min(settings.timeout_s, MODAL_READ_TIMEOUT_S) if settings.profile == "modal" else settings.timeout_s
        self._timeout = httpx.Timeout(connect=10.0, read=read, write=60.0, pool=10.0)
        headers: dict[str, str] = {}
        if settings.api_key is not None:
            headers["Authorization"] = f"Bearer {settings.api_key.reveal()}"
        if settings.modal_key is not None and settings.modal_secret is not None:
            headers["Modal-Key"] = settings.modal_key.reveal()
            headers["Modal-Secret"] = settings.modal_secret.reveal()
        self._http = ProviderHttp(
            PROVIDER,
            client,
            settings.base_url,
            headers,
            classify,
            policy=policy or RetryPolicy(deadline_s=settings.timeout_s),
            rng=rng,
            slots=slots,
        )

    # -- transport ---------------------------------------------------------------------------------
    async def _call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool = True,
        validate: Callable[[httpx.Response], None] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request; a 303 to its result is polled until the result is ready or the deadline passes."""
        started = self._clock()
        try:
            return await self._http.request(
                method, path, idempotent=idempotent, call_timeout=self._timeout, validate=validate, **kwargs
            )
        except SeeOther as moved:
            location = moved.location
        pause = 0.05
        while True:
            url = self._within_origin(location)
            if url is None or self._clock() - started > self.deadline_s:
                reason = "redirected off its origin" if url is None else "did not finish in time"
                if not idempotent:
                    raise self._http.unknown_outcome(reason)
                raise TransientProviderError(PROVIDER, f"The self-hosted voice server {reason}.")
            try:
                return await self._http.request("GET", url, call_timeout=self._timeout, validate=validate)
            except SeeOther as again:
                location = again.location
            except TransientProviderError as exc:
                if idempotent:
                    raise
                raise self._http.unknown_outcome(exc.operator_detail) from exc
            # Modal's result URL holds the request until it has news; a server that answers at once
            # is asked again after a short, growing pause.
            await asyncio.sleep(pause)
            pause = min(MAX_POLL_PAUSE_S, pause * 2)

    def _within_origin(self, location: str | None) -> str | None:
        """The absolute URL of a redirect target on the configured origin, else None."""
        if not location:
            return None
        base = f"{self._origin.scheme}://{self._origin.netloc}{self._origin.path}/"
        target = urlsplit(urljoin(base, location))
        if (target.scheme, target.netloc) != (self._origin.scheme, self._origin.netloc):
            return None
        return target.geturl()

    async def _json(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> object:
        decoded: list[object] = []

        def validate(response: httpx.Response) -> None:
            try:
                decoded.append(msgspec.json.decode(response.content))
            except msgspec.MsgspecError as exc:
                raise ValueError(f"malformed JSON answer: {exc}") from exc

        await self._call(method, path, idempotent=idempotent, validate=validate, **kwargs)
        return decoded[-1]

    # -- which kind of server ------------------------------------------------------------------------
    async def _probe(self) -> str:
        """Ask the server: `registry` unless `GET /v1/audio/voices` is 404 or 405; then `chatterbox` when
        `GET /v1/voices` is chatterbox-tts-api's library, else `inline`. The first answer settles `auto`."""
        try:
            await self._call("GET", VOICES_PATH)
            found = "registry"
        except PermanentProviderError as exc:
            if exc.http_status not in {404, 405}:
                raise
            found = "chatterbox" if await self._has_chatterbox_library() else "inline"
        self._resolved = self._resolved or found
        return self._resolved

    async def _has_chatterbox_library(self) -> bool:
        """Whether `GET /v1/voices` answers as chatterbox-tts-api's does: `{"voices": [...], "count": n}`."""
        try:
            response = await self._call("GET", CHATTERBOX_VOICES_PATH)
        except PermanentProviderError as exc:
            if exc.http_status in {404, 405}:
                return False
            raise
        try:
            body = msgspec.json.decode(response.content)
        except msgspec.MsgspecError:
            return False
        return isinstance(body, dict) and isinstance(body.get("voices"), list) and isinstance(body.get("count"), int)

    async def mode(self) -> str:
        """`registry`, `chatterbox` or `inline`: as configured, or as the server answered when first asked."""
        return self._resolved or await self._probe()

    async def _check_reads_reference(self, payload: dict[str, Any], mime_type: str) -> None:
        """Before a reference is first sent inline, prove the server reads `ref_audio`: ``payload`` with
        a reference that is no audio must be refused (400 or 422). A server that drops the field (as
        chatterbox-tts-api's `TTSRequest`, which has none, does) answers 200 in its default voice: such a
        server is refused with a permanent error, so a wrong voice is never spoken with a 200.

        The probe is the real request but for the reference's bytes, so a refusal for any other reason
        (the model, the text) would refuse the real request too: never a silent wrong voice. Two
        different references giving different audio would prove nothing: a server that ignores them still
        samples a different take each time. A server found to read it is not asked again by this
        process (one adapter per process); one found not to, not for ``INLINE_RECHECK_S``.
        """
        if self._reads_reference:
            return
        if self._clock() >= self._ignored_until:
            probe = {**payload, "ref_audio": data_url(NOT_AUDIO, mime_type)}
            try:
                await self._call("POST", SPEECH_PATH, json=probe, validate=has_audio)
            except PermanentProviderError as exc:
                if exc.http_status not in {400, 422}:
                    raise
                self._reads_reference = True
                return
            log.warning("selfhosted: the server spoke with a reference that is no audio: it ignores ref_audio")
            self._ignored_until = self._clock() + INLINE_RECHECK_S
        raise PermanentProviderError(
            PROVIDER,
            "The self-hosted voice server ignores the voice's reference, so it would speak in another voice.",
            provider_code="reference_ignored",
            operator_detail="POST /v1/audio/speech answered 200 to a ref_audio that is no audio; set "
            "SELFHOSTED_VOICE_REGISTRY to the server's voice registry (registry or chatterbox)",
        )

    # -- the adapter interface -----------------------------------------------------------------------
    async def enrol(
        self,
        samples: Sequence[SampleRef],
        *,
        name: str,
        language: str | None,
        transcript: str | None,
        key: str,
    ) -> ProviderVoice:
        """Register the reference (registry, chatterbox) or keep it for every synthesis (inline), tagged
        with the key."""
        self.sample_rules.check(PROVIDER, samples, language)
        if self.profile == "modal":
            # Wake the container before an enrolment (the model loads on the first request): the probe is
            # that request.
            log.info("selfhosted: warming up the server before an enrolment")
            await self._probe()
        sample = samples[0]
        lang = primary_language(language) if language else None
        voice_name = selfhosted_voice_name(key)
        mode = await self.mode()
        if mode == "inline":
            inline = InlineVoice(
                voice_id=voice_name,
                enrolment_key=key,
                name=name,
                language=lang,
                ref_text=transcript,
                audio=sample.data,
                mime_type=sample.mime_type,
            )
            # The probe's own reference replaces the sample's: the sample need not be encoded for it.
            probe = self._inline_payload(PROBE_TEXT, "wav", msgspec.structs.replace(inline, audio=NOT_AUDIO))
            await self._check_reads_reference(probe, sample.mime_type)
            return self._inline_voice(await self._store.put(inline))
        if mode == "chatterbox":
            suffix = CHATTERBOX_SUFFIXES.get(sample.mime_type)
            if suffix is None:
                raise PermanentProviderError(
                    PROVIDER,
                    "The self-hosted voice server does not take samples of this audio format.",
                    provider_code="unsupported_format",
                    operator_detail=f"chatterbox-tts-api takes {', '.join(CHATTERBOX_SUFFIXES)}",
                )
            data = {"voice_name": voice_name, **({"language": lang} if lang else {})}
            files = {"voice_file": (f"{voice_name}.{suffix}", sample.data, sample.mime_type)}
        else:
            data = {"name": voice_name, "consent": sample.consent_id or "voicegate"}
            if transcript:
                data["ref_text"] = transcript
            files = {"audio_sample": (sample.filename, sample.data, sample.mime_type)}

        async def create() -> ProviderVoice:
            body = await self._json("POST", _voices_path(mode), idempotent=False, data=data, files=files)
            created = created_voice(body, voice_name)
            return msgspec.structs.replace(self._voice(created, mode), enrolment_key=key, language=lang)

        return await enrol_once(key, self.find, create)

    async def find(self, key: str) -> ProviderVoice | None:
        """The voice this key made: inline under the key's name, or in the server's registry."""
        try:
            voice = await self.get(selfhosted_voice_name(key))
        except VoiceNotFoundError:
            return None
        # An inline voice carries the key already; one in the registry is known by its name alone.
        return msgspec.structs.replace(voice, enrolment_key=key)

    async def get(self, voice_id: str) -> ProviderVoice:
        """One voice; ``VoiceNotFoundError`` when neither the references nor the registry have it."""
        if (stored := await self._store.get(voice_id)) is not None:
            return self._inline_voice(stored)
        mode = await self.mode()
        if mode == "chatterbox":
            body = await self._json("GET", _voices_path(mode, voice_id))
            try:
                return self._voice(created_voice(body, voice_id), mode)
            except ValueError as exc:
                raise unreadable(exc) from exc
        if mode == "registry":
            for voice in await self._registry(mode):
                if voice_id in {voice.voice_id, voice.name}:
                    return voice
        raise VoiceNotFoundError(PROVIDER, NOT_FOUND, provider_code="voice_not_found")

    async def list(self) -> Sequence[ProviderVoice]:
        """The registry's uploaded voices (registry, chatterbox) and the references kept for inline use."""
        inline = [self._inline_voice(v) for v in await self._store.entries()]
        mode = await self.mode()
        registry = await self._registry(mode) if mode != "inline" else []
        return [*registry, *inline]

    async def _registry(self, mode: str) -> Sequence[ProviderVoice]:
        body = await self._json("GET", _voices_path(mode))
        try:
            return [self._voice(entry, mode) for entry in listed_voices(body)]
        except ValueError as exc:
            raise unreadable(exc) from exc

    async def delete(self, voice_id: str) -> None:
        """Forget an inline reference, or delete the voice from the registry; a missing voice raises
        ``VoiceNotFoundError``."""
        if await self._store.delete(voice_id):
            return
        mode = await self.mode()
        if mode == "inline":
            raise VoiceNotFoundError(PROVIDER, "The voice does not exist.", provider_code="voice_not_found")
        try:
            await self._call("DELETE", _voices_path(mode, voice_id))
        except PermanentProviderError as exc:
            if exc.http_status == 404 and not isinstance(exc, VoiceNotFoundError):
                raise VoiceNotFoundError(
                    PROVIDER, NOT_FOUND, **answer_fields(404, "voice_not_found", exc.operator_detail)
                ) from exc
            raise

    async def synthesize(self, voice: ProviderVoice, text: str, *, meter: SendMeter | None = None) -> SynthesisResult:
        """`POST /v1/audio/speech` for a WAV: naming a registered voice, or carrying an inline reference.
        A WAV answer (of 16-bit or 32-bit float samples) comes back as 16-bit mono PCM WAV."""
        payload = await self._speech_payload(voice, text, "wav")
        response = await self._call("POST", SPEECH_PATH, json=payload, validate=has_audio, meter=meter)
        request_id = response.headers.get("x-request-id")
        if is_wav(response.content):
            try:
                pcm, rate = wav_to_pcm16(response.content)
            except ValueError as exc:
                raise unplayable(exc) from exc
            return SynthesisResult(
                audio=pcm16_to_wav(pcm, rate), mime_type="audio/wav", sample_rate=rate, request_id=request_id
            )
        mime = response.headers.get("content-type", "audio/wav").split(";")[0].strip() or "audio/wav"
        return SynthesisResult(audio=response.content, mime_type=mime, request_id=request_id)

    async def stream(
        self, voice: ProviderVoice, text: str, *, meter: SendMeter | None = None
    ) -> AsyncGenerator[bytes, None]:
        """`POST /v1/audio/speech` as `pcm` (OpenAI's: 24 kHz 16-bit little-endian mono), read as it
        arrives; a server that does not stream sends it all at once, which still plays. chatterbox streams
        from `/v1/audio/speech/stream`, as a WAV: its header is read and its samples passed on."""
        payload = await self._speech_payload(voice, text, "pcm")
        chatterbox = "voice" in payload and await self.mode() == "chatterbox"
        path = CHATTERBOX_STREAM_PATH if chatterbox else SPEECH_PATH
        if not chatterbox:
            payload |= STREAM_AUDIO
        try:
            async with self._http.streaming("POST", path, json=payload, meter=meter) as response:
                async for chunk in pcm_of(self._http.body(response)):
                    yield chunk
        except SeeOther as moved:
            # Modal's 150 s cap met before the first byte: a live stream cannot wait for a polled result.
            raise TransientProviderError(
                PROVIDER, "The self-hosted voice server did not start speaking in time."
            ) from moved

    async def _speech_payload(self, voice: ProviderVoice, text: str, response_format: str) -> dict[str, Any]:
        if not text.strip():
            raise PermanentProviderError(PROVIDER, "There is no text to speak.", provider_code="empty_text")
        stored = await self._store.get(voice.voice_id)
        if stored is not None:
            payload = self._inline_payload(text, response_format, stored)
            await self._check_reads_reference(payload, stored.mime_type)
            return payload
        if voice.metadata.get("mode") == "inline":
            raise VoiceNotFoundError(
                PROVIDER, "The voice's reference is no longer kept.", provider_code="voice_not_found"
            )
        if await self.mode() == "chatterbox":
            # chatterbox-tts-api speaks its default voice for a name not in its library: look it up first
            # (VoiceNotFoundError when it is gone). Its TTSRequest has no `model`; it always answers WAV.
            await self.get(voice.voice_id)
            return {"input": text, "voice": voice.voice_id, "response_format": "wav"}
        payload = {"input": text, "response_format": response_format, "voice": voice.voice_id}
        if self.model:
            payload["model"] = self.model
        return payload

    def _inline_payload(self, text: str, response_format: str, stored: InlineVoice) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "input": text,
            "response_format": response_format,
            "ref_audio": data_url(stored.audio, stored.mime_type),
        }
        if stored.ref_text:
            payload["ref_text"] = stored.ref_text
        else:
            # Qwen3-TTS-Base clones in context from a reference and its transcript; without one, vLLM-Omni
            # refuses unless asked to clone from the speaker embedding alone.
            payload["x_vector_only_mode"] = True
        if self.model:
            payload["model"] = self.model
        return payload

    # -- shapes ---------------------------------------------------------------------------------------
    def _voice(self, entry: dict[str, Any], mode: str) -> ProviderVoice:
        voice_id = str(voice_key(entry))
        name = text_or_none(entry.get("name")) or voice_id
        created = entry.get("created_at") or entry.get("upload_date")
        return ProviderVoice(
            provider=PROVIDER,
            voice_id=voice_id,
            name=name,
            target_model=self.model,
            language=text_or_none(entry.get("language")),
            created_at=str(created) if isinstance(created, int | float | str) else None,
            metadata={"mode": mode, "name": name, "consent": text_or_none(entry.get("consent"))},
        )

    def _inline_voice(self, stored: InlineEntry) -> ProviderVoice:
        return ProviderVoice(
            provider=PROVIDER,
            voice_id=stored.voice_id,
            name=stored.voice_id,
            target_model=self.model,
            enrolment_key=stored.enrolment_key,
            language=stored.language,
            metadata={"mode": "inline", "voice_name": stored.name},
        )


def _voices_path(mode: str, voice_id: str | None = None) -> str:
    """The registry's route for ``mode`` (`registry` or `chatterbox`), or one voice's under it."""
    base = CHATTERBOX_VOICES_PATH if mode == "chatterbox" else VOICES_PATH
    return base if voice_id is None else f"{base}/{quote(voice_id, safe='')}"
