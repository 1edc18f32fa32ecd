"""Fake Cartesia: ``/voices/clone``, ``/voices`` (page object), ``/voices/{id}`` and ``/tts/bytes``, whose
body streams as the audio is made (as the real one's does).

Bodies follow the version asked for: ``2025-04-16`` as its API reference shows them (``is_public``; pages
with ``has_more`` and ``next_page``), ``2026-03-01`` as the cartesia 4.2.0 SDK's types read them
(``types/voice.py``, ``types/voice_metadata.py``: ``access``, ``visibility``, ``tagline``, ``locales``;
pages are ``pagination.py``'s ``CursorIDPage``: ``data`` only, paged by the last id until one is empty).
Models serve the languages docs.cartesia.ai ``tts-models/api-changes`` lists since 2026-06-01: a sunset
model, or a language sunset on a model, answers its ``model_sunsetted`` example.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fakes.audio import tone_pcm, tone_wav
from fakes.core import FakeProvider, RecordedRequest, Response, Streamed, chunked, json_response

VERSIONS = ("2024-06-10", "2024-11-13", "2025-04-16", "2026-03-01")
LANGUAGES = frozenset(
    [
        "en",
        "fr",
        "de",
        "es",
        "pt",
        "zh",
        "ja",
        "hi",
        "it",
        "ko",
        "nl",
        "pl",
        "ru",
        "sv",
        "tr",
        "tl",
        "bg",
        "ro",
        "ar",
        "cs",
        "el",
        "fi",
        "hr",
        "ms",
        "sk",
        "da",
        "ta",
        "uk",
        "hu",
        "no",
        "vi",
        "bn",
        "th",
        "he",
        "ka",
        "id",
        "te",
        "gu",
        "kn",
        "ml",
        "mr",
        "pa",
    ]
)
_SONIC_2 = frozenset({"en", "de", "es", "fr", "ja", "ko", "pt", "zh"})
_SONIC_2_SUNSET = frozenset({"it", "nl", "pl", "ru", "sv", "tr", "hi"})
# Each model the fake serves: (the languages it speaks, the languages sunset on it since 2026-06-01).
MODELS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    **dict.fromkeys(
        ("sonic-3.5", "sonic-3.5-2026-05-04", "sonic-3", "sonic-3-2026-01-12", "sonic-3-2025-10-27", "sonic-latest"),
        (LANGUAGES, frozenset[str]()),
    ),
    **dict.fromkeys(
        ("sonic-2", "sonic-2-2025-04-16", "sonic-2-2025-05-08", "sonic-2-2025-06-11"), (_SONIC_2, _SONIC_2_SUNSET)
    ),
    **dict.fromkeys(("sonic-turbo", "sonic-turbo-2025-06-04"), (_SONIC_2 | {"hi"}, _SONIC_2_SUNSET - {"hi"})),
}
# Sunset on 2026-06-01 (docs.cartesia.ai changelog): they answer `model_sunsetted`.
SUNSET_MODELS = frozenset(
    {"sonic", "sonic-english", "sonic-multilingual", "sonic-2-2025-03-07", "sonic-turbo-2025-03-07"}
)
# docs.cartesia.ai tts-models/api-changes, "Sunsetted models will start to error", verbatim but the request id.
SUNSET_TITLE = "Model sunsetted"
SUNSET_MESSAGE = "The requested model has been sunsetted and is no longer available."
SAMPLE_RATES = frozenset({8000, 16000, 22050, 24000, 44100, 48000})


@dataclass
class CartesiaVoice:
    id: str
    name: str
    description: str | None
    language: str
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat().replace("+00:00", "Z"))

    def as_json(self, version: str) -> dict[str, Any]:
        """A ``Voice`` as ``GET /voices[/{id}]`` answers it in ``version``."""
        common = {"id": self.id, "name": self.name, "created_at": self.created_at, "language": self.language}
        if version < "2026-03-01":
            return common | {"is_owner": True, "is_public": False, "description": self.description}
        return common | {
            "is_owner": True,
            "description": self.description or "",
            "access": "private",
            "visibility": "owner",
            "tagline": "",
            "locales": [{"locale": self.language, "is_native": True}],
            "gender": None,
        }

    def metadata_json(self, version: str, user_id: str) -> dict[str, Any]:
        """The ``VoiceMetadata`` ``POST /voices/clone`` answers in ``version``."""
        voice = {k: v for k, v in self.as_json(version).items() if k not in {"is_owner", "locales", "gender"}}
        return voice | {"user_id": user_id}


class CartesiaFake(FakeProvider):
    """Stateful Cartesia fake; errors are JSON from ``2026-03-01`` on and ``Title: Message`` text before.

    ``sunset`` holds the models that answer ``model_sunsetted`` (add one to sunset it now)."""

    def __init__(self, api_key: str = "sk_car_test", *, seed: int = 0) -> None:
        super().__init__(seed)
        self.api_key = api_key
        self.user_id = f"user_{uuid.uuid4().hex[:12]}"
        self.voices: dict[str, CartesiaVoice] = {}
        self.sunset: set[str] = set(SUNSET_MODELS)
        self.route("POST", "/voices/clone", self._clone)
        self.route("GET", "/voices", self._list)
        self.route("GET", r"/voices/(?P<voice_id>[^/]+)", self._get)
        self.route("DELETE", r"/voices/(?P<voice_id>[^/]+)", self._delete)
        self.route("POST", "/tts/bytes", self._tts)
        self._version = VERSIONS[-1]

    def error_response(self, status: int, retry_after: str | None) -> Response:
        if status == 429:
            response = self._error(429, "concurrency_limited", "Too many concurrent requests", "Slow down.")
        else:
            response = self._error(status, "internal_error", "Internal Server Error", "Something went wrong.")
        if retry_after:
            response.headers.append(("retry-after", retry_after))
        return response

    def _error(self, status: int, code: str, title: str, message: str) -> Response:
        if self._version >= "2026-03-01":
            body = {"error_code": code, "title": title, "message": message, "request_id": str(uuid.uuid4())}
            return json_response(status, body)
        return Response(status, f"{title}: {message}".encode(), [("content-type", "text/plain")])

    def _check(self, request: RecordedRequest) -> Response | None:
        self._version = request.headers.get("cartesia-version", VERSIONS[-1])
        if "cartesia-version" not in request.headers or self._version not in VERSIONS:
            self._version = VERSIONS[-1]
            return self._error(400, "invalid_version", "Invalid version", "A valid Cartesia-Version is required.")
        bearer = request.headers.get("authorization") == f"Bearer {self.api_key}"
        if not (bearer or request.headers.get("x-api-key") == self.api_key):
            return self._error(401, "unauthorized", "Unauthorized", "Invalid API key.")
        return None

    async def _clone(self, request: RecordedRequest, _: dict[str, str]) -> Response:
        if (error := self._check(request)) is not None:
            return error
        fields = request.form_fields()
        clip = fields.get("clip", [])
        for required in ("name", "language"):
            if required not in fields:
                return self._error(400, "invalid_request", "Invalid request", f"Missing field: {required}")
        if not clip or clip[0].filename is None or not clip[0].data:
            return self._error(400, "invalid_request", "Invalid request", "Missing file: clip")
        language = fields["language"][0].text
        if language not in LANGUAGES:
            return self._error(400, "invalid_request", "Invalid request", f"Unsupported language: {language}")
        description = fields["description"][0].text if "description" in fields else None
        voice = CartesiaVoice(str(uuid.uuid4()), fields["name"][0].text, description, language)
        self.voices[voice.id] = voice
        return json_response(200, voice.metadata_json(self._version, self.user_id))

    async def _list(self, request: RecordedRequest, _: dict[str, str]) -> Response:
        if (error := self._check(request)) is not None:
            return error
        query = {k: v[0] for k, v in request.query.items()}
        limit = int(query.get("limit", "10"))
        if not 1 <= limit <= 100:
            return self._error(400, "invalid_request", "Invalid request", "limit must be between 1 and 100")
        ordered = list(self.voices.values())
        start = 0
        if "starting_after" in query:
            ids = [v.id for v in ordered]
            start = ids.index(query["starting_after"]) + 1 if query["starting_after"] in ids else len(ids)
        page = ordered[start : start + limit]
        body: dict[str, Any] = {"data": [v.as_json(self._version) for v in page]}
        if self._version < "2026-03-01":
            more = start + limit < len(ordered)
            body |= {"has_more": more, "next_page": page[-1].id if more and page else None}
        return json_response(200, body)

    async def _get(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if (error := self._check(request)) is not None:
            return error
        voice = self.voices.get(params["voice_id"])
        if voice is None:
            return self._error(404, "not_found", "Not Found", f"Voice {params['voice_id']} not found")
        return json_response(200, voice.as_json(self._version))

    async def _delete(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if (error := self._check(request)) is not None:
            return error
        if self.voices.pop(params["voice_id"], None) is None:
            return self._error(404, "not_found", "Not Found", f"Voice {params['voice_id']} not found")
        return Response(204)

    async def _tts(self, request: RecordedRequest, _: dict[str, str]) -> Response | Streamed:
        if (error := self._check(request)) is not None:
            return error
        try:
            body = request.json()
        except json.JSONDecodeError:
            return self._error(400, "invalid_request", "Invalid request", "Body must be JSON")
        model = body.get("model_id")
        # The status of a `model_sunsetted` answer is not documented; 400 is what a bad model gets.
        if model in self.sunset:
            return self._error(400, "model_sunsetted", SUNSET_TITLE, SUNSET_MESSAGE)
        if model not in MODELS:
            return self._error(400, "model_not_found", "Invalid model", f"Model {model} not found")
        if not body.get("transcript"):
            return self._error(400, "invalid_request", "Invalid request", "transcript is required")
        voice_spec: dict[str, Any] = body.get("voice") or {}
        voice = self.voices.get(str(voice_spec.get("id")))
        if voice_spec.get("mode") != "id" or voice is None:
            return self._error(404, "voice_not_found", "Voice not found", f"Voice {voice_spec.get('id')} not found")
        language = body.get("language") or voice.language
        speaks, sunset_languages = MODELS[model]
        if language in sunset_languages:
            return self._error(400, "model_sunsetted", SUNSET_TITLE, SUNSET_MESSAGE)
        if language not in speaks:
            # Undocumented: what Cartesia answers for a language its model never spoke.
            return self._error(400, "invalid_request", "Invalid request", f"{model} does not support {language}")
        fmt = body.get("output_format") or {}
        rate = fmt.get("sample_rate")
        if fmt.get("container") not in {"raw", "wav", "mp3"} or rate not in SAMPLE_RATES:
            return self._error(400, "invalid_request", "Invalid request", "Invalid output_format")
        seconds = min(0.05 * len(body["transcript"]), 5.0)
        if fmt["container"] == "raw":
            if fmt.get("encoding") != "pcm_s16le":
                return self._error(400, "invalid_request", "Invalid request", "The fake speaks pcm_s16le only")
            audio, mime = tone_pcm(seconds, rate), "audio/pcm"
        else:
            audio, mime = tone_wav(seconds, rate), "audio/wav"
        # 0.1 s of audio a chunk, the first after the fake's stream interval.
        return Streamed(200, chunked(audio, rate // 10 * 2), [("content-type", mime)])
