"""Fake OpenAI-shaped speech server, as vLLM-Omni serves Qwen3-TTS-Base: `POST /v1/audio/speech`, and
in registry mode the voice registry `POST`/`GET /v1/audio/voices` and `DELETE /v1/audio/voices/{name}`.

Synthesis takes time as a model's does: one 0.1 s chunk every ``stream_interval_s``. As vLLM-Omni's
`OpenAICreateSpeechRequest` (vllm_omni/entrypoints/openai/protocol/audio.py, commit 0131cb55) and
docs/serving/speech_api.md (commit 078de2d1) say, only `stream_format: "audio"` sends the chunks as they are
made (raw bytes); `stream: true` or `stream_format: "sse"` sends them as `speech.audio.*` server-sent events;
without either the whole clip comes back once it is all made. Streaming takes `pcm` or `wav` only.

Modes: ``registry``; ``inline`` (no registry: those routes answer 404, every synthesis carries its
reference as `ref_audio` + `ref_text`); ``modal`` (the registry behind a Modal web endpoint: proxy auth
with `Modal-Key`/`Modal-Secret`, a 303 to `/__modal/result/{call}` for a request still running after
``result_cap_s``, polled there, and a cold start of ``cold_start_s`` whenever the container is down,
which also empties the registry unless it lives on a volume); ``chatterbox`` (chatterbox-tts-api, read
at travisvn/chatterbox-tts-api@a5f466128e4baa8e4cceb3bba9b7ca9de6f7ec6b: no `/v1/audio/voices` (404); a
voice library at `/v1/voices` (app/api/endpoints/voices.py); `POST /v1/audio/speech` validates the
fields of its `TTSRequest` (app/models/requests.py) and drops any other, `ref_audio` and `model`
included, speaks its default voice for a name not in the library, and always answers WAV: a 32-bit
float WAV, as `torchaudio.save` writes a float tensor, or from `/v1/audio/speech/stream` a 16-bit WAV
header declaring an unknown length, then the samples as they are made (app/api/endpoints/speech.py)).

The audio is a tone whose pitch tells the voice that spoke (`voice_pitch`): a test can hear whether
the registered voice or the default one was used.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import re
import struct
import threading
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from fakes.audio import pcm_wav, tone_pcm, wav_info
from fakes.core import FakeProvider, RecordedRequest, Response, Streamed, chunked, json_response

Mode = Literal["registry", "inline", "modal", "chatterbox"]
MODEL = "Qwen/Qwen3-TTS-12Hz-0.6B-Base"
MAX_SAMPLE_BYTES = 10 * 1024 * 1024
SAMPLE_TYPES = frozenset({"audio/wav", "audio/mpeg", "audio/flac", "audio/ogg", "audio/aac", "audio/webm", "audio/mp4"})
#: `OpenAICreateSpeechRequest.response_format`; streaming takes the first two only.
FORMATS = frozenset({"pcm", "wav", "flac", "mp3", "opus"})
STREAM_FORMATS = frozenset({"audio", "sse"})
OUTPUT_RATE = 24000
CHUNK_BYTES = OUTPUT_RATE // 10 * 2
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DATA_URL = re.compile(r"^data:(audio/[a-z0-9.+-]+);base64,(.+)$", re.S)
RESULT_PREFIX = "/__modal/result/"
#: The pitch of a server's default voice (what chatterbox speaks for a name it does not know).
DEFAULT_PITCH = 220.0
#: chatterbox-tts-api: SUPPORTED_VOICE_FORMATS, the multilingual model's languages (app/core/mtl.py, the
#: default USE_MULTILINGUAL_MODEL=true), TTSRequest's `input` max_length and the model's rate (S3GEN_SR).
CHATTERBOX_SUFFIXES = frozenset({".mp3", ".wav", ".flac", ".m4a", ".ogg"})
CHATTERBOX_LANGUAGES = frozenset(
    "ar da de el en es fi fr he hi it ja ko ms nl no pl pt ru sv sw tr".split()  # noqa: SIM905 - as listed there
)
CHATTERBOX_MAX_INPUT = 3000


def voice_pitch(reference: bytes | None) -> float:
    """The pitch (Hz) of the tone a voice speaks: the default voice's, or one drawn from its reference."""
    return DEFAULT_PITCH if reference is None else 300.0 + hashlib.sha256(reference).digest()[0]


def float_wav(pcm: bytes, rate: int) -> bytes:
    """16-bit mono PCM as a WAV of 32-bit float samples (format 3, with the `fact` chunk a non-PCM WAV
    carries), as torchaudio saves a float tensor."""
    samples = (np.frombuffer(pcm, dtype="<i2").astype("<f4") / 32768.0).tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"fact" + struct.pack("<II", 4, len(samples) // 4)
    chunks += b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def streamed_wav_header(rate: int, riff_size: int = 0xFFFFFFFF) -> bytes:
    """The WAV header a server streams first: 16-bit mono, the data size unknown (0xFFFFFFFF). vLLM-Omni
    leaves the RIFF size unknown too; chatterbox's `create_wav_header` gives it as 0x7FFFFFFF - 36."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", 0xFFFFFFFF)
    )


@dataclass
class SelfhostedVoice:
    name: str
    consent: str
    audio: bytes
    mime_type: str
    ref_text: str | None
    created_at: int = field(default_factory=lambda: int(time.time()))
    language: str = "en"
    filename: str = ""

    def as_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "consent": self.consent,
            "created_at": self.created_at,
            "mime_type": self.mime_type,
            "file_size": len(self.audio),
        }
        if self.ref_text is not None:
            entry["ref_text"] = self.ref_text
        return entry


class SelfhostedFake(FakeProvider):
    """Stateful fake of a self-hosted speech server. ``speeches`` records what each synthesis used (the voice
    name, or ``inline`` with its reference's bytes and text), how it was asked to answer (``stream_format``,
    ``stream``) and how far it got (``rendered`` of ``chunks``); ``reset()`` forgets every voice.

    ``hold_after = n`` makes every synthesis stop after its n-th chunk until ``release()``, so a test can see
    what a client has received while the clip is provably not all made."""

    def __init__(
        self,
        mode: Mode = "registry",
        *,
        api_key: str | None = None,
        model: str = MODEL,
        seed: int = 0,
        modal_key: str = "wk-test-key",
        modal_secret: str = "ws-test-secret",  # noqa: S107 - a fake's fixed test credential
        cold_start_s: float = 0.0,
        result_cap_s: float = 150.0,
        speech_delay_s: float = 0.0,
        volume: bool = False,
    ) -> None:
        super().__init__(seed)
        self.mode = mode
        self.api_key = api_key
        self.model = model
        self.modal_key, self.modal_secret = modal_key, modal_secret
        self.cold_start_s = cold_start_s
        self.result_cap_s = result_cap_s
        self.speech_delay_s = speech_delay_s
        self.volume = volume
        self.voices: dict[str, SelfhostedVoice] = {}
        self.speeches: list[dict[str, Any]] = []
        self.hold_after: int | None = None
        self._hold_lock = threading.Lock()
        self._released = False
        self._resume: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self.cold_starts = 0
        self.polls = 0
        self.warm = False
        self._calls: dict[str, asyncio.Task[Response | Streamed]] = {}
        self._start_lock: asyncio.Lock | None = None
        if mode == "chatterbox":
            self.route("GET", "/v1/voices", self._library)
            self.route("POST", "/v1/voices", self._library_upload)
            self.route("GET", r"/v1/voices/(?P<name>[^/]+)", self._library_voice)
            self.route("DELETE", r"/v1/voices/(?P<name>[^/]+)", self._library_delete)
            self.route("POST", "/v1/audio/speech", self._chatterbox_speech)
            self.route("POST", "/v1/audio/speech/stream", self._chatterbox_speech)
            return
        if mode != "inline":
            self.route("GET", "/v1/audio/voices", self._list)
            self.route("POST", "/v1/audio/voices", self._upload)
            self.route("DELETE", r"/v1/audio/voices/(?P<name>[^/]+)", self._delete)
        self.route("POST", "/v1/audio/speech", self._speech)

    def reset(self) -> None:
        """Forget every voice (a server reinstalled, a registry that was not persisted)."""
        self.voices.clear()

    def scale_down(self) -> None:
        """The Modal container goes away; the next request starts a new one (a cold start)."""
        self.warm = False

    # -- envelopes -------------------------------------------------------------------------------------
    @staticmethod
    def _error(status: int, message: str, kind: str, param: str | None = None) -> Response:
        return json_response(status, {"error": {"message": message, "type": kind, "param": param, "code": status}})

    def error_response(self, status: int, retry_after: str | None) -> Response:
        kind = "RateLimitError" if status == 429 else "InternalServerError"
        response = self._error(status, "The server is overloaded." if status == 429 else "Internal error.", kind)
        if retry_after:
            response.headers.append(("retry-after", retry_after))
        return response

    def _unauthorized(self, request: RecordedRequest) -> Response | None:
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return json_response(401, {"error": "Unauthorized"})
        return None

    # -- Modal's web endpoint in front of the server ----------------------------------------------------
    async def _dispatch(self, request: RecordedRequest) -> Response | Streamed:
        if self.mode != "modal":
            return await super()._dispatch(request)
        if (request.headers.get("modal-key"), request.headers.get("modal-secret")) != (
            self.modal_key,
            self.modal_secret,
        ):
            return Response(
                401, b"modal-http: missing credentials for proxy authorization", [("content-type", "text/plain")]
            )
        if request.path.startswith(RESULT_PREFIX):
            return await self._result(request.path.removeprefix(RESULT_PREFIX))
        task = asyncio.ensure_future(self._in_container(request))
        return await self._answer_within_cap(task)

    async def _in_container(self, request: RecordedRequest) -> Response | Streamed:
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if not self.warm:
                # `@modal.enter` loads the model; a registry not kept on a Volume starts empty.
                await asyncio.sleep(self.cold_start_s)
                if not self.volume:
                    self.voices.clear()
                self.cold_starts += 1
                self.warm = True
        return await super()._dispatch(request)

    async def _answer_within_cap(
        self, task: asyncio.Task[Response | Streamed], call_id: str | None = None
    ) -> Response | Streamed:
        done, _ = await asyncio.wait({task}, timeout=self.result_cap_s)
        if task in done:
            if call_id is not None:
                self._calls.pop(call_id, None)
            return task.result()
        call_id = call_id or uuid.uuid4().hex
        self._calls[call_id] = task
        return Response(303, b"", [("location", f"{RESULT_PREFIX}{call_id}")])

    async def _result(self, call_id: str) -> Response | Streamed:
        self.polls += 1
        task = self._calls.get(call_id)
        if task is None:
            return Response(404, b"modal-http: unknown function call", [("content-type", "text/plain")])
        return await self._answer_within_cap(task, call_id)

    # -- the speech server -----------------------------------------------------------------------------
    async def _list(self, request: RecordedRequest, _: dict[str, str]) -> Response:
        if (error := self._unauthorized(request)) is not None:
            return error
        uploaded = [
            {**voice.as_json(), "embedding_source": "audio", "embedding_dim": None} for voice in self.voices.values()
        ]
        return json_response(200, {"voices": [voice["name"] for voice in uploaded], "uploaded_voices": uploaded})

    async def _upload(self, request: RecordedRequest, _: dict[str, str]) -> Response:
        if (error := self._unauthorized(request)) is not None:
            return error
        fields = request.form_fields()
        for required in ("audio_sample", "name", "consent"):
            if required not in fields:
                return json_response(
                    422,
                    {"detail": [{"loc": ["body", required], "msg": "Field required", "type": "missing"}]},
                )
        sample, name = fields["audio_sample"][0], fields["name"][0].text
        if sample.filename is None or not sample.data:
            return json_response(400, {"success": False, "error": "audio_sample must be a file"})
        if len(sample.data) > MAX_SAMPLE_BYTES:
            return json_response(413, {"success": False, "error": "File too large (max 10MB)"})
        if sample.content_type not in SAMPLE_TYPES:
            return json_response(400, {"success": False, "error": f"Unsupported audio type {sample.content_type}"})
        if not _NAME.match(name):
            return json_response(400, {"success": False, "error": "Invalid voice name"})
        if name in self.voices:
            return json_response(400, {"success": False, "error": f"Voice '{name}' already exists"})
        ref_text = fields["ref_text"][0].text if "ref_text" in fields else None
        voice = SelfhostedVoice(name, fields["consent"][0].text, sample.data, sample.content_type, ref_text)
        self.voices[name] = voice
        return json_response(200, {"success": True, "voice": voice.as_json()})

    async def _delete(self, request: RecordedRequest, params: dict[str, str]) -> Response:
        if (error := self._unauthorized(request)) is not None:
            return error
        if self.voices.pop(params["name"], None) is None:
            return json_response(404, {"success": False, "error": f"Voice '{params['name']}' not found"})
        return json_response(200, {"success": True, "message": f"Voice '{params['name']}' deleted successfully"})

    async def _speech(self, request: RecordedRequest, _: dict[str, str]) -> Response | Streamed:
        if (error := self._unauthorized(request)) is not None:
            return error
        try:
            body = request.json()
        except ValueError:
            return self._error(400, "The body must be JSON.", "BadRequestError")
        text = body.get("input") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return self._error(400, "Input text cannot be empty", "BadRequestError", "input")
        if body.get("model") not in (None, self.model):
            return self._error(404, f"The model `{body['model']}` does not exist.", "NotFoundError", "model")
        response_format, stream_format = body.get("response_format", "wav"), body.get("stream_format")
        if response_format not in FORMATS:
            return self._error(400, "Unsupported response_format", "BadRequestError", "response_format")
        if stream_format is not None and stream_format not in STREAM_FORMATS:
            return self._error(400, "stream_format must be 'sse' or 'audio'", "BadRequestError", "stream_format")
        streaming = stream_format is not None or body.get("stream") is True
        if streaming and response_format not in {"pcm", "wav"}:
            message = f"Streaming requires response_format='pcm' or 'wav'. Got response_format='{response_format}'."
            return self._error(400, message, "BadRequestError", "response_format")
        used = self._reference(body)
        if isinstance(used, Response):
            return used
        await asyncio.sleep(self.speech_delay_s)
        pieces = chunked(tone_pcm(min(0.05 * len(text), 5.0), OUTPUT_RATE), CHUNK_BYTES)
        speech = {"input": text, **used, "stream_format": stream_format, "stream": body.get("stream", False)}
        speech |= {"chunks": len(pieces), "rendered": 0}
        self.speeches.append(speech)
        rendered = self._render(pieces, speech)
        headers = [("x-request-id", uuid.uuid4().hex)]
        if stream_format == "audio":
            media = "audio/pcm" if response_format == "pcm" else "audio/wav"
            header = b"" if response_format == "pcm" else streamed_wav_header(OUTPUT_RATE)
            return Streamed(200, _after(header, rendered), [("content-type", media), *headers])
        if streaming:
            return Streamed(200, _events(rendered, response_format), [("content-type", "text/event-stream"), *headers])
        pcm = b"".join([piece async for piece in rendered])
        if response_format == "pcm":
            return Response(200, pcm, [("content-type", "audio/pcm"), *headers])
        return Response(200, pcm_wav(pcm, OUTPUT_RATE), [("content-type", "audio/wav"), *headers])

    async def _render(self, pieces: list[bytes], speech: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        """The model at work: each 0.1 s chunk takes ``stream_interval_s``; with ``hold_after`` set it stops
        after that many chunks until ``release()``."""
        for piece in pieces:
            if speech["rendered"] == self.hold_after:
                await self._held()
            await asyncio.sleep(self.stream_interval_s)
            speech["rendered"] += 1
            yield piece

    async def _held(self) -> None:
        with self._hold_lock:
            if self._released:
                return
            if self._resume is None:
                self._resume = (asyncio.get_running_loop(), asyncio.Event())
            resume = self._resume[1]
        await resume.wait()

    def release(self) -> None:
        """Let every held synthesis go on, now and from now on (from any thread: a test's loop is not the
        fake's)."""
        with self._hold_lock:
            self._released = True
            waiting = self._resume
        if waiting is not None:
            loop, resume = waiting
            loop.call_soon_threadsafe(resume.set)

    def _reference(self, body: dict[str, Any]) -> dict[str, Any] | Response:
        """What the synthesis clones: an inline reference, or a registered voice."""
        ref_audio = body.get("ref_audio")
        if ref_audio is not None:
            match = _DATA_URL.match(ref_audio) if isinstance(ref_audio, str) else None
            try:
                audio = base64.b64decode(match[2], validate=True) if match else b""
                if match is not None and match[1] == "audio/wav":
                    wav_info(audio)
            except (binascii.Error, ValueError):
                audio = b""
            if not audio:
                return self._error(400, "ref_audio must be a base64 audio data URL", "BadRequestError", "ref_audio")
            ref_text = body.get("ref_text")
            if not (isinstance(ref_text, str) and ref_text.strip()) and body.get("x_vector_only_mode") is not True:
                # Qwen3-TTS-Base clones in context from the reference and its transcript, or from the speaker
                # embedding alone when asked (serving_speech.py `_validate_qwen_tts_request`, commit 01bc4171).
                message = (
                    "Base task requires non-empty 'ref_text' (transcript of the reference audio) unless "
                    "'x_vector_only_mode' is enabled"
                )
                return self._error(400, message, "BadRequestError", "ref_text")
            return {"voice": "inline", "ref_audio": audio, "ref_text": ref_text}
        voice = body.get("voice")
        if not isinstance(voice, str) or not voice:
            return self._error(400, "A Base model needs `voice` or `ref_audio`", "BadRequestError", "voice")
        if self.mode == "inline" or voice not in self.voices:
            return self._error(404, f"Voice '{voice}' not found", "NotFoundError", "voice")
        return {"voice": voice}

    # -- chatterbox-tts-api ------------------------------------------------------------------------------
    @staticmethod
    def _chatterbox_error(status: int, message: str, kind: str) -> Response:
        """Its HTTPException handler answers the exception's detail: `{"error": {"message", "type"}}`."""
        return json_response(status, {"error": {"message": message, "type": kind}})

    @staticmethod
    def _invalid(field_name: str, message: str) -> Response:
        """FastAPI's request validation answer."""
        return json_response(422, {"detail": [{"loc": ["body", field_name], "msg": message, "type": "value_error"}]})

    @staticmethod
    def _entry(voice: SelfhostedVoice) -> dict[str, Any]:
        """A voice as `VoiceLibrary.list_voices` / `get_voice_info` describe it."""
        suffix = voice.filename[voice.filename.rfind(".") :]
        return {
            "name": voice.name,
            "filename": f"{voice.name}{suffix}",
            "original_filename": voice.filename,
            "file_extension": suffix,
            "file_size": len(voice.audio),
            "file_hash": hashlib.md5(voice.audio).hexdigest(),  # noqa: S324 - as the library hashes
            "upload_date": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(voice.created_at)),
            "path": f"voices/{voice.name}{suffix}",
            "language": voice.language,
            "aliases": [],
            "exists": True,
        }

    async def _library(self, _: RecordedRequest, __: dict[str, str]) -> Response:
        voices = sorted((self._entry(v) for v in self.voices.values()), key=lambda e: e["upload_date"], reverse=True)
        return json_response(200, {"voices": voices, "count": len(voices)})

    async def _library_voice(self, _: RecordedRequest, params: dict[str, str]) -> Response:
        voice = self.voices.get(params["name"])
        if voice is None:
            return self._chatterbox_error(404, f"Voice '{params['name']}' not found", "voice_not_found_error")
        return json_response(200, {"voice": self._entry(voice)})

    async def _library_delete(self, _: RecordedRequest, params: dict[str, str]) -> Response:
        if self.voices.pop(params["name"], None) is None:
            return self._chatterbox_error(404, f"Voice '{params['name']}' not found", "voice_not_found_error")
        return json_response(200, {"message": "Voice deleted successfully", "voice_name": params["name"]})

    async def _library_upload(self, request: RecordedRequest, _: dict[str, str]) -> Response:
        fields = request.form_fields()
        for required in ("voice_name", "voice_file"):
            if required not in fields:
                return self._invalid(required, "Field required")
        sample, name = fields["voice_file"][0], fields["voice_name"][0].text
        language = fields["language"][0].text if "language" in fields else "en"
        if not 1 <= len(name) <= 100:
            return self._invalid("voice_name", "ensure this value has at most 100 characters")
        if not 2 <= len(language) <= 5:
            return self._invalid("language", "ensure this value has 2 to 5 characters")
        if not sample.filename:
            return self._chatterbox_error(400, "No filename provided", "invalid_request_error")
        suffix = sample.filename[sample.filename.rfind(".") :].lower() if "." in sample.filename else ""
        if suffix not in CHATTERBOX_SUFFIXES:
            return self._chatterbox_error(400, f"Unsupported audio format: {suffix}", "invalid_request_error")
        if len(sample.data) > MAX_SAMPLE_BYTES:
            return self._chatterbox_error(400, "File too large. Maximum size: 10MB", "invalid_request_error")
        if language not in CHATTERBOX_LANGUAGES:
            return self._chatterbox_error(400, f"Unsupported language: {language}", "invalid_request_error")
        if any(char in name for char in '/\\:*?"<>|'):
            return self._chatterbox_error(400, "Voice name contains invalid characters", "validation_error")
        if name in self.voices:
            return self._chatterbox_error(409, f"Voice '{name}' already exists", "voice_exists_error")
        voice = SelfhostedVoice(
            name, "", sample.data, sample.content_type or "", None, language=language, filename=sample.filename
        )
        self.voices[name] = voice
        entry = {k: v for k, v in self._entry(voice).items() if k in {"name", "filename", "file_size", "upload_date"}}
        return json_response(
            201, {"message": "Voice uploaded successfully", "voice": {**entry, "language": voice.language}}
        )

    async def _chatterbox_speech(self, request: RecordedRequest, _: dict[str, str]) -> Response | Streamed:
        """`/v1/audio/speech` (a whole float WAV) and `/v1/audio/speech/stream` (a 16-bit WAV as it is made):
        the `TTSRequest` fields are validated, any other is dropped."""
        try:
            body = request.json()
        except ValueError:
            return self._invalid("body", "JSON decode error")
        if not isinstance(body, dict):
            return self._invalid("body", "value is not a valid dict")
        text = body.get("input")
        if not isinstance(text, str) or not 1 <= len(text) <= CHATTERBOX_MAX_INPUT:
            return self._invalid("input", "ensure this value has 1 to 3000 characters")
        if not text.strip():
            return self._invalid("input", "Input text cannot be empty")
        if body.get("stream_format", "audio") not in {"audio", "sse", None}:
            return self._invalid("stream_format", "stream_format must be one of: audio, sse")
        voice = self.voices.get(body.get("voice") or "alloy")  # not in the library: the default voice
        await asyncio.sleep(self.speech_delay_s)
        self.speeches.append({"input": text.strip(), "voice": voice.name if voice else "default"})
        seconds = min(0.05 * len(text.strip()), 5.0)
        pcm = tone_pcm(seconds, OUTPUT_RATE, voice_pitch(voice.audio if voice else None))
        headers = [("content-type", "audio/wav")]
        if request.path.endswith("/stream"):
            chunks = [streamed_wav_header(OUTPUT_RATE, 0x7FFFFFFF - 36), *chunked(pcm, OUTPUT_RATE // 10 * 2)]
            return Streamed(200, chunks, headers)
        return Response(200, float_wav(pcm, OUTPUT_RATE), headers)


async def _after(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
    """``first`` (when there is one), then ``rest``."""
    if first:
        yield first
    async with contextlib.aclosing(rest):
        async for piece in rest:
            yield piece


async def _events(rendered: AsyncGenerator[bytes, None], response_format: str) -> AsyncGenerator[bytes, None]:
    """vLLM-Omni's SSE answer: a `speech.audio.delta` event per chunk (base64), then `speech.audio.done`."""
    async with contextlib.aclosing(rendered):
        async for piece in rendered:
            delta = {
                "type": "speech.audio.delta",
                "audio": base64.b64encode(piece).decode(),
                "response_format": response_format,
            }
            yield f"event: speech.audio.delta\ndata: {json.dumps(delta)}\n\n".encode()
    done = {"type": "speech.audio.done", "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}}
    yield f"event: speech.audio.done\ndata: {json.dumps(done)}\n\n".encode()
