"""Fake ElevenLabs: IVC add, voice get/list (v1, v2)/delete and text-to-speech, whole or streamed."""

from __future__ import annotations

import hashlib
import json
import secrets
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakes.audio import mp3_of, tone_pcm, wav_info
from fakes.core import FakeProvider, RecordedRequest, Response, Streamed, chunked, json_response

OUTPUT_FORMATS = [
    "mp3_22050_32",
    "mp3_44100_32",
    "mp3_44100_64",
    "mp3_44100_96",
    "mp3_44100_128",
    "mp3_44100_192",
    "pcm_8000",
    "pcm_16000",
    "pcm_22050",
    "pcm_24000",
    "pcm_44100",
    "pcm_48000",
    "ulaw_8000",
    "alaw_8000",
    "opus_48000_32",
    "opus_48000_64",
    "opus_48000_96",
    "opus_48000_128",
    "opus_48000_192",
]
CHARACTER_LIMITS = {"eleven_v3": 3000, "eleven_flash_v2_5": 40000, "eleven_multilingual_v2": 10000}
# An MPEG-1 Layer III frame header; enough for "looks like MP3" checks.
MP3_FRAME = b"\xff\xfb\x90\x64" + b"\x00" * 413


@dataclass
class ElevenVoice:
    voice_id: str
    name: str
    description: str | None
    labels: dict[str, str]
    samples: list[dict[str, Any]]
    created_at_unix: int = field(default_factory=lambda: int(time.time()))

    def as_json(self) -> dict[str, Any]:
        return {
            "voice_id": self.voice_id,
            "name": self.name,
            "category": "cloned",
            "labels": self.labels,
            "description": self.description,
            "samples": self.samples,
            "available_for_tiers": [],
            "high_quality_base_model_ids": ["eleven_multilingual_v2"],
            "settings": None,
            "is_owner": True,
            "is_legacy": False,
            "is_mixed": False,
            "created_at_unix": self.created_at_unix,
        }


def _new_voice_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(20))


class ElevenLabsFake(FakeProvider):
    """Stateful ElevenLabs fake.

    Switches: ``quota_exhausted`` (401 ``quota_exceeded``), ``max_voices`` (400 ``voice_limit_reached``),
    ``voice_not_found_status`` (404 with the newer error shape, or 400 with the legacy one).
    """

    def __init__(self, api_key: str = "sk_test_eleven", *, seed: int = 0, max_voices: int = 10) -> None:
        super().__init__(seed)
        self.api_key = api_key
        self.max_voices = max_voices
        self.quota_exhausted = False
        self.voice_not_found_status = 404
        self.voices: dict[str, ElevenVoice] = {}
        #: 16-bit mono PCM the fake speaks for (seconds, rate) instead of its tone or silent MP3 frames, for a
        #: test that needs audio like speech (the watermark's); MP3 answers are that PCM encoded.
        self.speech: Callable[[float, int], bytes] | None = None
        self._file_hashes: set[str] = set()
        self.route("POST", "/v1/voices/add", self._add)
        self.route("GET", "/v1/voices", self._list_v1)
        self.route("GET", "/v2/voices", self._list_v2)
        self.route("GET", r"/v1/voices/(?P<voice_id>[^/]+)", self._get)
        self.route("DELETE", r"/v1/voices/(?P<voice_id>[^/]+)", self._delete)
        self.route("POST", r"/v1/text-to-speech/(?P<voice_id>[^/]+)", self._tts)
        self.route("POST", r"/v1/text-to-speech/(?P<voice_id>[^/]+)/stream", self._tts_stream)

    # -- error envelopes -------------------------------------------------------------------------
    def error_response(self, status: int, retry_after: str | None) -> Response:
        headers = [("retry-after", retry_after)] if retry_after else []
        if status == 429:
            throttled: dict[str, Any] = {
                "detail": {
                    "status": "too_many_concurrent_requests",
                    "message": "You have too many concurrent requests in progress.",
                }
            }
            return json_response(429, throttled, headers)
        # Bare 5xx body without "detail", as seen in production crashes.
        body = {
            "status": "internal_server_error",
            "message": "Internal Server error. All such crashes are reported to us automatically.",
        }
        return json_response(status, body, headers)

    @staticmethod
    def _legacy(status: int, code: str, message: str, **extra: Any) -> Response:
        return json_response(status, {"detail": {"status": code, "message": message, **extra}})

    @staticmethod
    def _modern(status: int, kind: str, code: str, message: str) -> Response:
        detail = {
            "type": kind,
            "code": code,
            "message": message,
            "status": code,
            "request_id": uuid.uuid4().hex,
            "param": None,
        }
        return json_response(status, {"detail": detail})

    @staticmethod
    def _validation(loc: list[Any], msg: str) -> Response:
        return json_response(422, {"detail": [{"loc": loc, "msg": msg, "type": "value_error"}]})

    def _voice_not_found(self, voice_id: str) -> Response:
        if self.voice_not_found_status == 404:
            return self._modern(
                404, "not_found", "voice_not_found", f"A voice with the voice_id {voice_id} was not found."
            )
        return self._legacy(400, "voice_not_found", f"A voice for the voice_id {voice_id} was not found.")

    def _auth_error(self, request: RecordedRequest) -> Response | None:
        if request.headers.get("xi-api-key") != self.api_key:
            return self._legacy(401, "invalid_api_key", "Invalid API key")
        return None

    def _quota_error(self) -> Response | None:
        if self.quota_exhausted:
            return self._legacy(
                401,
                "quota_exceeded",
                "This request exceeds your quota of 10000. You have 0 credits remaining, "
                "while 91 credits are required for this request.",
                character_used=10000,
                character_limit=10000,
            )
        return None

    # -- routes ----------------------------------------------------------------------------------
    async def _add(self, request: RecordedRequest, _: dict[str, str]) -> Response:
        if (error := self._auth_error(request) or self._quota_error()) is not None:
            return error
        fields = request.form_fields()
        files = fields.get("files", []) + fields.get("files[]", [])
        if "name" not in fields:
            return self._validation(["body", "name"], "field required")
        if not files:
            return self._validation(["body", "files"], "field required")
        if any(part.filename is None for part in files):
            return self._validation(["body", "files", 0], "Expected UploadFile, received: <class 'str'>")
        # A form bool as FastAPI reads one (``false`` when absent, the API's default); kept on each sample as
        # the real VoiceResponseModel's samples report it.
        denoise_parts = fields.get("remove_background_noise")
        denoise_raw = denoise_parts[0].text.lower() if denoise_parts else "false"
        if denoise_raw not in {"true", "false"}:
            return self._validation(["body", "remove_background_noise"], "value could not be parsed to a boolean")
        if len(self.voices) >= self.max_voices:
            return self._legacy(
                400,
                "voice_limit_reached",
                f"You have reached your maximum amount of custom voices ({len(self.voices)} / "
                f"{self.max_voices}). You can upgrade your subscription to increase your custom voice limit.",
            )
        samples = []
        hashes = []
        for part in files:
            if part.content_type == "audio/wav":
                try:
                    wav_info(part.data)
                except ValueError:
                    return self._legacy(
                        400, "corrupted_file", "File upload is corrupted. Please ensure it is playable audio."
                    )
            digest = hashlib.sha256(part.data).hexdigest()
            if digest in self._file_hashes or digest in hashes:
                return self._legacy(400, "duplicate_files", "You cannot upload the same file twice.")
            hashes.append(digest)
            samples.append(
                {
                    "sample_id": uuid.uuid4().hex[:20],
                    "file_name": part.filename,
                    "mime_type": part.content_type,
                    "size_bytes": len(part.data),
                    "hash": digest[:32],
                    "remove_background_noise": denoise_raw == "true",
                }
            )
        labels_raw = fields.get("labels")
        try:
            labels = json.loads(labels_raw[0].text) if labels_raw else {}
        except ValueError:
            return self._validation(["body", "labels"], "labels must be a JSON object")
        description = fields["description"][0].text if "description" in fields else None
        voice = ElevenVoice(_new_voice_id(), fields["name"][0].text, description, labels, samples)
        self.voices[voice.voice_id] = voice
        self._file_hashes.update(hashes)
        return json_response(200, {"voice_id": voice.voice_id, "requires_verification": False})

    async def _list_v1(self, request: RecordedRequest, _: dict[str, str]) -> Response:
        if (error := self._auth_error(request)) is not None:
            return error
        return json_response(200, {"voices": [v.as_json() for v in self.voices.values()]})

    async def _list_v2(self, request: RecordedRequest, _: dict[str, str]) -> Response:
        if (error := self._auth_error(request)) is not None:
            return error
        query = {k: v[0] for k, v in request.query.items()}
        size = int(query.get("page_size", "10"))
        if not 1 <= size <= 100:
            return self._validation(["query", "page_size"], "ensure this value is between 1 and 100")
        voices = sorted(self.voices.values(), key=lambda v: (v.created_at_unix, v.voice_id))
        start = int(query.get("next_page_token") or 0)
        page = voices[start : start + size]
        more = start + size < len(voices)
        body = {
            "voices": [v.as_json() for v in page],
            "has_more": more,
            "total_count": len(voices),
            "next_page_token": str(start + size) if more else None,
        }
        return json_response(200, body)

    async def _get(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if (error := self._auth_error(request)) is not None:
            return error
        voice = self.voices.get(params["voice_id"])
        if voice is None:
            return self._voice_not_found(params["voice_id"])
        return json_response(200, voice.as_json())

    async def _delete(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if (error := self._auth_error(request)) is not None:
            return error
        if self.voices.pop(params["voice_id"], None) is None:
            return self._voice_not_found(params["voice_id"])
        return json_response(200, {"status": "ok"})

    async def _tts(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        return await self._speech(request, params)

    async def _tts_stream(self, request: RecordedRequest, params: dict[str, str]) -> Response | Streamed:
        """The same audio as ``_tts``, sent in chunks of 0.1 s of audio (about 4 MP3 frames) as it is made."""
        answer = await self._speech(request, params)
        if answer.status != 200:
            return answer
        kind = request.query.get("output_format", ["mp3_44100_128"])[0].partition("_")
        size = int(kind[2]) // 10 * 2 if kind[0] == "pcm" else len(MP3_FRAME) * 4
        return Streamed(200, chunked(answer.body, size), answer.headers)

    async def _speech(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if (error := self._auth_error(request) or self._quota_error()) is not None:
            return error
        output_format = request.query.get("output_format", ["mp3_44100_128"])[0]
        if output_format not in OUTPUT_FORMATS:
            return self._validation(["query", "output_format"], "value is not a valid enumeration member")
        try:
            body = request.json()
        except ValueError:
            return self._validation(["body"], "Expecting value")
        text = body.get("text") if isinstance(body, dict) else None
        if not text:
            return self._validation(["body", "text"], "field required")
        model = body.get("model_id", "eleven_multilingual_v2")
        limit = CHARACTER_LIMITS.get(model, 10000)
        if len(text) > limit:
            return self._legacy(
                400,
                "max_character_limit_exceeded",
                f"{len(text)} characters exceeds the character limit of {limit} characters.",
            )
        if params["voice_id"] not in self.voices:
            return self._voice_not_found(params["voice_id"])
        kind, _, rest = output_format.partition("_")
        seconds = min(0.05 * len(text), 5.0)
        headers = [("request-id", uuid.uuid4().hex), ("character-cost", str(len(text)))]
        if kind == "pcm":
            speak = self.speech or tone_pcm
            audio, mime = speak(seconds, int(rest)), "audio/pcm"
        elif self.speech is not None:
            rate = int(rest.partition("_")[0])
            audio, mime = mp3_of(self.speech(seconds, rate), rate), "audio/mpeg"
        else:
            audio, mime = MP3_FRAME * max(1, int(seconds * 38)), "audio/mpeg"
        return Response(200, audio, [("content-type", mime), *headers])
