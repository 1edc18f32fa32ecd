"""Fake DashScope: ``qwen-voice-enrollment`` customization and VC non-realtime generation, answered whole
(an audio URL) or, with ``X-DashScope-SSE: enable``, as server-sent events of base64 PCM; an error to such a
request comes as an SSE ``error`` event with the error status, as DashScope sends it."""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fakes.audio import tone_pcm, tone_wav, wav_info
from fakes.core import FakeProvider, RecordedRequest, Response, Streamed, chunked, json_response

CUSTOMIZATION = "/api/v1/services/audio/tts/customization"
GENERATION = "/api/v1/services/aigc/multimodal-generation/generation"
TARGET_MODELS = (
    "qwen3-tts-vc-realtime-2026-01-15",
    "qwen3-tts-vc-realtime-2025-11-27",
    "qwen3-tts-vc-2026-01-22",
)
HTTP_MODELS = ("qwen3-tts-vc-2026-01-22",)
SSE_TYPE = ("content-type", "text/event-stream;charset=UTF-8")
DATA_URL = re.compile(r"^data:(?P<type>[\w/.+-]+);base64,(?P<data>.*)$", re.DOTALL)
ERROR_TEXT = {
    429: ("Throttling.RateQuota", "Requests rate limit exceeded, please try again later."),
    500: (
        "InternalError",
        "An internal error has occured, please try again later or contact service support.",
    ),
    502: ("InternalError", "An internal error has occured, please try again later."),
    503: ("ModelUnavailable", "Model is unavailable, please try again later."),
    504: ("InternalError", "An internal error has occured, please try again later."),
}


@dataclass
class QwenVoice:
    voice: str
    target_model: str
    language: str | None
    created: datetime
    audio_source: str


class QwenFake(FakeProvider):
    """Stateful DashScope fake; ``max_voices`` models the 1,000-voice account limit."""

    def __init__(self, api_key: str = "sk-test-qwen", *, seed: int = 0, max_voices: int = 1000) -> None:
        super().__init__(seed)
        self.api_key = api_key
        self.max_voices = max_voices
        self.voices: dict[str, QwenVoice] = {}
        self.audio_files: dict[str, bytes] = {}
        # When set, creates succeed in degraded mode with this reason (fallback_mode = true).
        self.fallback_reason: str | None = None
        # When set, a streamed generation fails with an `error` event after this many audio events.
        self.sse_error_after: int | None = None
        self.route("POST", CUSTOMIZATION, self._customization)
        self.route("POST", GENERATION, self._generation)
        self.route("GET", r"/fake-oss/(?P<audio_id>[\w-]+)\.wav", self._download)

    def error_response(self, status: int, retry_after: str | None) -> Response:
        code, message = ERROR_TEXT.get(status, ("InternalError", "An internal error has occured."))
        return self._error(status, code, message, retry_after)

    def fault_response(self, request: RecordedRequest, status: int, retry_after: str | None) -> Response:
        return _as_asked(request, self.error_response(status, retry_after))

    def _error(self, status: int, code: str, message: str, retry_after: str | None = None) -> Response:
        headers = [("retry-after", retry_after)] if retry_after else []
        body = {"request_id": str(uuid.uuid4()), "code": code, "message": message}
        return json_response(status, body, headers)

    def _ok(self, output: dict[str, Any] | None, usage: dict[str, Any]) -> Response:
        body: dict[str, Any] = {"usage": usage, "request_id": str(uuid.uuid4())}
        if output is not None:
            body["output"] = output
        return json_response(200, body)

    def _authorised(self, request: RecordedRequest) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    def _body(self, request: RecordedRequest) -> dict[str, Any] | Response:
        if not self._authorised(request):
            return self._error(401, "InvalidApiKey", "Invalid API-key provided.")
        try:
            body = request.json()
        except ValueError:
            return self._error(400, "BadRequest.IllegalInput", "The input parameter requires json format.")
        if not isinstance(body, dict) or not body.get("model"):
            return self._error(400, "BadRequest.EmptyModel", 'Required parameter "model" missing from request.')
        if not isinstance(body.get("input"), dict):
            return self._error(400, "BadRequest.EmptyInput", "Required input parameter missing from request.")
        return body

    async def _customization(self, request: RecordedRequest, _: dict[str, str]) -> Response:
        body = self._body(request)
        if isinstance(body, Response):
            return body
        if body["model"] != "qwen-voice-enrollment":
            return self._error(404, "ModelNotFound", "Model can not be found.")
        payload = body["input"]
        action = payload.get("action")
        if action == "create":
            return self._create(payload)
        if action == "list":
            return self._list(payload)
        if action == "delete":
            return self._delete(payload)
        return self._error(400, "InvalidParameter", "Required parameter(s) missing or invalid: action.")

    def _create(self, payload: dict[str, Any]) -> Response:
        target = payload.get("target_model")
        name = payload.get("preferred_name")
        if target not in TARGET_MODELS:
            return self._error(400, "InvalidParameter", "Required parameter(s) missing or invalid: target_model.")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_]{1,16}", name):
            return self._error(400, "InvalidParameter", "Required parameter(s) missing or invalid: preferred_name.")
        audio = payload.get("audio")
        source = audio.get("data") if isinstance(audio, dict) else None
        if not isinstance(source, str) or not source:
            return self._error(400, "InvalidParameter", "Required parameter(s) missing or invalid: audio.")
        problem = self._check_audio(source)
        if problem is not None:
            return problem
        if len(self.voices) >= self.max_voices:
            return self._error(
                400,
                "Throttling.AllocationQuota",
                "Maximum voice storage limit exceeded, please delete existing voices.",
            )
        now = datetime.now(UTC)
        voice = f"qwen-tts-vc-{name}-voice-{now.strftime('%Y%m%d%H%M%S%f')[:17]}-{secrets.token_hex(2)}"
        self.voices[voice] = QwenVoice(voice, target, payload.get("language"), now, source[:64])
        output: dict[str, Any] = {"voice": voice, "target_model": target}
        if self.fallback_reason is not None:
            output.update(fallback_mode=True, fallback_reason=self.fallback_reason)
        else:
            output["fallback_mode"] = False
        return self._ok(output, {"count": 1})

    def _check_audio(self, source: str) -> Response | None:
        if source.startswith(("http://", "https://")):
            return None  # the real service downloads it; the fake trusts a URL it is given
        match = DATA_URL.match(source)
        if match is None:
            return self._error(400, "BadRequest.InputDownloadFailed", "Failed to download the input file.")
        if match["type"] not in {"audio/wav", "audio/mpeg", "audio/mp4"}:
            return self._error(400, "Audio.DecoderError", "Decoder audio file failed.")
        if len(match["data"]) >= 10 * 1024 * 1024:
            return self._error(400, "BadRequest.InputDownloadFailed", "Failed to download the input file.")
        try:
            raw = base64.b64decode(match["data"], validate=True)
        except binascii.Error:
            return self._error(400, "Audio.DecoderError", "Decoder audio file failed.")
        if match["type"] != "audio/wav":
            return None
        try:
            info = wav_info(raw)
        except ValueError:
            return self._error(400, "Audio.DecoderError", "Decoder audio file failed.")
        if info.sample_rate < 24000:
            return self._error(400, "Audio.AudioRateError", "File sample rate unsupported.")
        if info.duration_s > 60:
            return self._error(400, "Audio.DurationLimitError", "Audio duration exceeds maximum allowed limit.")
        if info.duration_s < 3 or info.peak < 100:
            return self._error(400, "Audio.PreprocessError", "No segments meet minimum duration requirement")
        return None

    def _list(self, payload: dict[str, Any]) -> Response:
        size = int(payload.get("page_size", 10))
        index = int(payload.get("page_index", 0))
        ordered = sorted(self.voices.values(), key=lambda v: v.created, reverse=True)
        page = ordered[index * size : (index + 1) * size]
        stamp = "%Y-%m-%d %H:%M:%S"
        items = [
            {
                "voice": v.voice,
                "target_model": v.target_model,
                "language": v.language,
                "gmt_create": v.created.strftime(stamp),
                "gmt_modified": v.created.strftime(stamp),
            }
            for v in page
        ]
        output = {"page_index": index, "page_size": size, "total_count": len(ordered), "voice_list": items}
        return self._ok(output, {"count": 0})

    def _delete(self, payload: dict[str, Any]) -> Response:
        voice = payload.get("voice")
        if not isinstance(voice, str) or voice not in self.voices:
            return self._error(400, "BadRequest.VoiceNotFound", f"Voice '{voice}' not found.")
        del self.voices[voice]
        return self._ok({"voice": voice}, {"count": 0})

    async def _generation(self, request: RecordedRequest, _: dict[str, str]) -> Response | Streamed:
        answer = self._generate(request)
        return _as_asked(request, answer) if isinstance(answer, Response) else answer

    def _generate(self, request: RecordedRequest) -> Response | Streamed:
        body = self._body(request)
        if isinstance(body, Response):
            return body
        model = body["model"]
        if model not in HTTP_MODELS:
            return self._error(404, "ModelNotFound", "Model can not be found.")
        text = body["input"].get("text")
        voice = self.voices.get(body["input"].get("voice", ""))
        if not text:
            return self._error(400, "BadRequest.EmptyInput", "Required input parameter missing from request.")
        if voice is None or voice.target_model != model:
            # A VC voice works only with the model it was enrolled for.
            return self._error(400, "InvalidParameter", "Invalid voice specified")
        seconds = min(0.05 * len(text), 5.0)
        if request.headers.get("x-dashscope-sse") == "enable":
            return self._events(chunked(tone_pcm(seconds, 24000), 4800), len(text), self.sse_error_after)
        audio_id = f"audio_{uuid.uuid4().hex}"
        self.audio_files[audio_id] = tone_wav(seconds, 24000)
        host = request.headers.get("host", "127.0.0.1")
        audio = {
            "data": "",
            "url": f"http://{host}/fake-oss/{audio_id}.wav",
            "id": audio_id,
            "expires_at": int(time.time()) + 86400,
        }
        return self._ok({"finish_reason": "stop", "audio": audio}, {"characters": len(text)})

    @staticmethod
    def _events(pcm_chunks: list[bytes], characters: int, error_after: int | None) -> Streamed:
        """Server-sent events as DashScope sends them: each carries 0.1 s of base64 PCM, the last none and
        ``finish_reason: stop`` with the usage; or an ``error`` event after ``error_after`` of them."""
        request_id = str(uuid.uuid4())
        events = []
        for index, pcm in enumerate([*pcm_chunks, b""], start=1):
            if error_after is not None and index > error_after:
                error = {"code": "InternalError", "message": "An internal error has occured.", "request_id": request_id}
                events.append(_error_event(index, 500, json.dumps(error)))
                break
            last = not pcm
            output = {
                "finish_reason": "stop" if last else "null",
                "audio": {"data": base64.b64encode(pcm).decode(), "id": f"audio_{request_id}", "expires_at": 0},
            }
            payload = {
                "output": output,
                "usage": {"characters": characters} if last else None,
                "request_id": request_id,
            }
            events.append(f"id:{index}\nevent:result\n:HTTP_STATUS/200\ndata:{json.dumps(payload)}\n\n".encode())
        return Streamed(200, events, [SSE_TYPE])

    async def _download(self, _: RecordedRequest, params: dict[str, str]) -> Response:
        data = self.audio_files.get(params["audio_id"])
        if data is None:
            return Response(404, b"<Error><Code>NoSuchKey</Code></Error>", [("content-type", "application/xml")])
        return Response(200, data, [("content-type", "audio/wav")])


def _error_event(index: int, status: int, data: str) -> bytes:
    """An SSE ``error`` event as DashScope frames it: id, event name, the status as a comment, the JSON error."""
    return f"id:{index}\nevent:error\n:HTTP_STATUS/{status}\ndata:{data}\n\n".encode()


def _as_asked(request: RecordedRequest, response: Response) -> Response:
    """An error answer framed as the request asked: for ``X-DashScope-SSE: enable``, the JSON envelope as one SSE
    ``error`` event under the same status (what the SDK parses: ``_handle_http_failed_response`` in
    ``dashscope/common/utils.py``, ``_sse_error_body`` in ``dashscope/v2/errors.py``)."""
    if response.status < 400 or request.headers.get("x-dashscope-sse") != "enable":
        return response
    headers = [(name, value) for name, value in response.headers if name != "content-type"]
    return Response(response.status, _error_event(1, response.status, response.body.decode()), [*headers, SSE_TYPE])
