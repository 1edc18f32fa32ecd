"""The Qwen adapter beside the official DashScope SDK (``dashscope==2.0.2``, in the dev extra).

Every call voicegate makes to DashScope is built twice against one recording server on 127.0.0.1: by the SDK
and by the adapter. The two requests must match on what the service reads (method, path, query, the
``Authorization`` header, ``X-DashScope-SSE`` and the other ``X-DashScope-*`` switches, the content type, and
the body's field names and types with ``model`` and ``input.action`` by value). Then the adapter must read the
recorded answer (bodies taken from the SDK's types and the documentation, cited at each) as the SDK reads
it, error answers included.

The SDK's two surfaces are both used where they have the call:
- 1.x (``requests``, base URL ``dashscope.base_http_api_url``): ``dashscope.MultiModalConversation.call``, as the
  SDK's own Qwen-TTS example calls it (``dashscope/examples/legacy_1x/qwen_tts.py``), and ``BaseApi.call`` on
  ``audio/tts/customization``, as the SDK's ``VoiceEnrollmentService`` sends the customization envelope
  (``dashscope/audio/tts_v2/enrollment.py``).
- 2.0 (``httpx``, ``Client(base_url=...)``): ``client.audio.tts.http.synthesize``/``stream``
  (``dashscope/v2/resources/audio/http_tts.py``) and ``client.audio.voice_design.list``/``delete`` with
  ``model="qwen-voice-enrollment"`` (``dashscope/v2/resources/audio/customization.py``: the same
  ``{model, input: {action, voice}}`` envelope with the short action words ``create``/``list``/``query``/``delete``
  that ``qwen-voice-enrollment`` uses).

The SDK has no class for ``qwen-voice-enrollment``'s create: its envelope (path, headers, ``model``,
``input.action``) is checked through ``BaseApi.call``, but the create fields (``target_model``,
``preferred_name``, ``audio.data``, ``text``, ``language``) rest on the documentation only
(``/work/shared/reference/providers.md`` [Q1][Q4]).
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import dashscope
import httpx
import pytest
from dashscope.api_entities.http_request import close_shared_sync_session
from dashscope.client.base_api import BaseApi
from dashscope.common.constants import ApiProtocol, HTTPMethod
from dashscope.v2 import Client
from dashscope.v2.errors import APIStatusError

from backend.providers.base import ProviderVoice, SampleRef
from backend.providers.errors import (
    ModelRetiredError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    VoiceNotFoundError,
)
from backend.providers.qwen import ENROLMENT_MODEL, QwenProvider
from fakes import FakeProvider, RecordedRequest, serve
from fakes.audio import tone_pcm, tone_wav
from fakes.core import Response, Streamed, json_response
from tests.provider_support import FAST_POLICY, QWEN_KEY, settings_for

# The 2.0 client warns on every audio call that its audio API is a preview.
pytestmark = pytest.mark.filterwarnings("ignore:dashscope 2.0 audio API is a preview:FutureWarning")

MODEL = "qwen3-tts-vc-2026-01-22"
# The example voice name of the create and list pages (providers.md [Q1][Q2]).
VOICE = "qwen-tts-vc-guanyu-voice-20250812105009984-838b"
REQUEST_ID = "b2b9d5a4-0c53-9b6a-8d2b-5e9b1c2f7a10"
TEXT = "Good morning."
CUSTOMIZATION = "/api/v1/services/audio/tts/customization"
GENERATION = "/api/v1/services/aigc/multimodal-generation/generation"
PCM = tone_pcm(0.3, 24000)
WAV = tone_wav(0.3, 24000)


class Recorder(FakeProvider):
    """Records every request and answers each kind (``create``, ``list``, ``delete``, ``synthesize``,
    ``stream``) with the recorded answer the test set for it; serves ``WAV`` at ``/oss/audio.wav``."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, Response | Streamed] = {}
        self.route("POST", r"/api/v1/services/.+", self._answer)
        self.route("GET", r"/oss/audio\.wav", self._download)

    def to(self, kind: str) -> list[RecordedRequest]:
        """The requests of one kind, in the order they came."""
        return [r for r in self.requests if r.path != "/oss/audio.wav" and kind_of(r) == kind]

    async def _answer(self, request: RecordedRequest, _: dict[str, str]) -> Response | Streamed:
        return self.answers[kind_of(request)]

    async def _download(self, _: RecordedRequest, __: dict[str, str]) -> Response:
        return Response(200, WAV, [("content-type", "audio/wav")])


def kind_of(request: RecordedRequest) -> str:
    if request.path == CUSTOMIZATION:
        return str(request.json()["input"]["action"])
    return "stream" if request.headers.get("x-dashscope-sse") == "enable" else "synthesize"


def types_of(value: Any) -> Any:
    """A JSON value with every leaf replaced by its type's name (lists by their first item's)."""
    if isinstance(value, dict):
        return {key: types_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [types_of(item) for item in value[:1]]
    return type(value).__name__


def shape(request: RecordedRequest) -> dict[str, Any]:
    """What DashScope reads from a request. The SDK's identification headers (``User-Agent``,
    ``x-dashscope-sdk-*``) and ``Accept`` are left out: the two SDK surfaces differ on them (the 2.0 client
    sends ``Accept: */*`` even for a stream), so the service cannot depend on them."""
    body = request.json()
    if body.get("parameters") == {}:
        del body["parameters"]  # the 1.x surface always sends an empty one, the 2.0 client none
    return {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "authorization": request.headers.get("authorization"),
        "content-type": request.headers.get("content-type", "").split(";")[0],
        **{
            name: request.headers.get(name)
            for name in ("x-dashscope-sse", "x-dashscope-async", "x-dashscope-workspace")
        },
        "model": body.get("model"),
        "action": body.get("input", {}).get("action"),
        "body": types_of(body),
    }


def sse(*events: tuple[str, str | None, dict[str, Any]]) -> bytes:
    """Server-sent events as DashScope frames them: ``id``, ``event``, the status (as the ``:HTTP_STATUS/nnn``
    comment, or as a ``status:`` field, which the SDK reads: ``dashscope/common/utils.py`` ``_handle_stream``),
    then ``data`` and a blank line."""
    frames = []
    for index, (name, status, data) in enumerate(events, start=1):
        status_line = f"{status}\n" if status else ""
        frames.append(f"id:{index}\nevent:{name}\n{status_line}data:{json.dumps(data)}\n\n")
    return "".join(frames).encode()


SSE_HEADERS = [("content-type", "text/event-stream;charset=UTF-8")]


def error_body(code: str, message: str) -> dict[str, Any]:
    """DashScope's error envelope, as both SDK surfaces read it: ``request_id``, ``code``, ``message``
    (``dashscope/common/utils.py`` ``_handle_error_message``; ``dashscope/v2/errors.py`` ``error_from_status``;
    providers.md "Common envelope")."""
    return {"request_id": REQUEST_ID, "code": code, "message": message}


def error_answer(status: int, code: str, message: str, *, as_sse: bool) -> Response:
    """An error answer: JSON, or for a request that asked for SSE the ``event:error`` frame DashScope sends
    with the same non-2xx status (read by ``_handle_http_failed_response`` in ``dashscope/common/utils.py`` and
    ``_sse_error_body`` in ``dashscope/v2/errors.py``)."""
    if as_sse:
        return Response(status, sse(("error", f":HTTP_STATUS/{status}", error_body(code, message))), SSE_HEADERS)
    return json_response(status, error_body(code, message))


# Recorded answers, one per call.
# create: providers.md [Q1] (output.voice, target_model, fallback_mode; usage.count = 1).
CREATED = {
    "output": {"voice": VOICE, "target_model": MODEL, "fallback_mode": False},
    "usage": {"count": 1},
    "request_id": REQUEST_ID,
}
# list: providers.md [Q2] (page_index, page_size, total_count, voice_list[] of voice, target_model, language,
# gmt_create, gmt_modified); the SDK reads ``voice_list`` (``VoiceList``/``DesignedVoiceList`` alias).
LISTED = {
    "output": {
        "page_index": 0,
        "page_size": 100,
        "total_count": 1,
        "voice_list": [
            {
                "voice": VOICE,
                "target_model": MODEL,
                "language": "zh",
                "gmt_create": "2025-08-11 17:59:32",
                "gmt_modified": "2025-08-11 17:59:32",
            }
        ],
    },
    "usage": {"count": 0},
    "request_id": REQUEST_ID,
}
NO_VOICES = {**LISTED, "output": {"page_index": 0, "page_size": 100, "total_count": 0, "voice_list": []}}
# delete: providers.md [Q3].
DELETED = {"output": {"voice": VOICE}, "usage": {"count": 0}, "request_id": REQUEST_ID}


def synthesized(url: str) -> dict[str, Any]:
    """A whole synthesis: the audio as a URL, ``data`` empty (providers.md [Q9]; the SDK's ``HttpSynthesis``
    reads ``output.audio.url``/``id``/``expires_at``)."""
    audio = {"data": "", "url": f"{url}/oss/audio.wav", "id": "audio_b2b9d5a4", "expires_at": 1767225600}
    return {"request_id": REQUEST_ID, "output": {"finish_reason": "stop", "audio": audio}, "usage": {"characters": 13}}


def streamed(url: str) -> Streamed:
    """A streamed synthesis: base64 PCM in each ``output.audio.data``, the last part ``finish_reason: stop`` with
    the whole audio's URL (the SDK's ``HttpSynthesisChunk``, ``_chunk_from_data``; providers.md [Q9])."""
    halves = [PCM[: len(PCM) // 2], PCM[len(PCM) // 2 :]]
    parts = [
        {
            "output": {"finish_reason": "null", "audio": {"data": base64.b64encode(half).decode(), "id": "audio_1"}},
            "request_id": REQUEST_ID,
        }
        for half in halves
    ]
    last = {"data": "", "url": f"{url}/oss/audio.wav", "id": "audio_1", "expires_at": 1767225600}
    parts.append(
        {"output": {"finish_reason": "stop", "audio": last}, "usage": {"characters": 13}, "request_id": REQUEST_ID}
    )
    return Streamed(200, [sse(("result", ":HTTP_STATUS/200", part)) for part in parts], SSE_HEADERS)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Recorder, str]]:
    """The recording server, with the 1.x SDK surface pointed at it."""
    fake = Recorder()
    with serve(fake) as url:
        monkeypatch.setattr(dashscope, "base_http_api_url", f"{url}/api/v1")
        yield fake, url
    close_shared_sync_session()


@pytest.fixture
def sdk(recorder: tuple[Recorder, str]) -> Iterator[Client]:
    """The 2.0 client on the recording server, without its own retries."""
    client = Client(api_key=QWEN_KEY, base_url=f"{recorder[1]}/api/v1", max_retries=0)
    yield client
    client.close()


def adapter(url: str, http_client: httpx.AsyncClient) -> QwenProvider:
    settings = settings_for(DASHSCOPE_API_KEY=QWEN_KEY, DASHSCOPE_BASE_URL=url)
    return QwenProvider(settings.sections["qwen"], http_client, policy=FAST_POLICY, rng=random.Random(3))  # noqa: S311


def customization_v1(input_: dict[str, Any]) -> Any:
    """The customization envelope as the SDK's ``VoiceEnrollmentService`` sends it, for ``qwen-voice-enrollment``."""
    return BaseApi.call(
        model=ENROLMENT_MODEL,
        input=input_,
        task_group="audio",
        task="tts",
        function="customization",
        api_key=QWEN_KEY,
        api_protocol=ApiProtocol.HTTP,
        http_method=HTTPMethod.POST,
    )


def synthesize_v1(*, stream: bool) -> Any:
    return dashscope.MultiModalConversation.call(api_key=QWEN_KEY, model=MODEL, text=TEXT, voice=VOICE, stream=stream)


VOICE_REF = ProviderVoice(provider="qwen", voice_id=VOICE, target_model=MODEL)
SAMPLE = SampleRef(
    data=WAV, mime_type="audio/wav", filename="sample.wav", public_url="https://storage.example/signed?token=t"
)


def only(requests: list[RecordedRequest]) -> RecordedRequest:
    assert len(requests) == 1, [r.path for r in requests]
    return requests[0]


async def test_create_matches_the_sdk_envelope_and_reads_the_documented_answer(
    recorder: tuple[Recorder, str], http_client: httpx.AsyncClient
) -> None:
    fake, url = recorder
    fake.answers |= {"create": json_response(200, CREATED), "list": json_response(200, NO_VOICES)}
    voice = await adapter(url, http_client).enrol(
        [SAMPLE], name="Ada", language="zh", transcript="hello there", key="k-parity"
    )
    ours = only(fake.to("create"))
    answer = customization_v1(ours.json()["input"])

    theirs = only(fake.to("create")[1:])
    assert shape(theirs) == shape(ours)
    assert answer.status_code == 200
    assert (voice.voice_id, voice.target_model, voice.request_id) == (
        answer.output["voice"],
        answer.output["target_model"],
        answer.request_id,
    )
    assert voice.metadata["fallback_mode"] is answer.output["fallback_mode"]


async def test_list_matches_the_sdk_and_reads_the_documented_answer(
    recorder: tuple[Recorder, str], sdk: Client, http_client: httpx.AsyncClient
) -> None:
    fake, url = recorder
    fake.answers["list"] = json_response(200, LISTED)
    voices = await adapter(url, http_client).list()
    ours = only(fake.to("list"))
    customization_v1({"action": "list", "page_size": 100, "page_index": 0})
    listed = sdk.audio.voice_design.list(model=ENROLMENT_MODEL, page_size=100, page_index=0)

    theirs = fake.to("list")[1:]
    assert [shape(r) for r in theirs] == [shape(ours)] * 2
    assert [r.json()["input"] for r in theirs] == [ours.json()["input"]] * 2
    assert [(v.voice_id, v.target_model, v.language, v.created_at) for v in voices] == [
        (item["voice"], item["target_model"], item["language"], item["gmt_create"]) for item in listed.voices
    ]


async def test_delete_matches_the_sdk(
    recorder: tuple[Recorder, str], sdk: Client, http_client: httpx.AsyncClient
) -> None:
    fake, url = recorder
    fake.answers["delete"] = json_response(200, DELETED)
    await adapter(url, http_client).delete(VOICE)
    ours = only(fake.to("delete"))
    customization_v1({"action": "delete", "voice": VOICE})
    deleted = sdk.audio.voice_design.delete(VOICE, model=ENROLMENT_MODEL)

    theirs = fake.to("delete")[1:]
    assert [shape(r) for r in theirs] == [shape(ours)] * 2
    assert [r.json()["input"] for r in theirs] == [ours.json()["input"]] * 2
    assert deleted.request_id == REQUEST_ID


async def test_synthesize_matches_the_sdk_and_reads_the_documented_answer(
    recorder: tuple[Recorder, str], sdk: Client, http_client: httpx.AsyncClient
) -> None:
    fake, url = recorder
    fake.answers["synthesize"] = json_response(200, synthesized(url))
    result = await adapter(url, http_client).synthesize(VOICE_REF, TEXT)
    ours = only(fake.to("synthesize"))
    answer = synthesize_v1(stream=False)
    whole = sdk.audio.tts.http.synthesize(TEXT, model=MODEL, voice=VOICE)

    theirs = fake.to("synthesize")[1:]
    assert [shape(r) for r in theirs] == [shape(ours)] * 2
    assert [r.json()["input"] for r in theirs] == [ours.json()["input"]] * 2
    assert answer.output.audio.url == whole.audio_url == f"{url}/oss/audio.wav"
    download = only([r for r in fake.requests if r.path == "/oss/audio.wav"])
    assert "authorization" not in download.headers
    assert (result.audio, result.request_id, result.model) == (WAV, whole.request_id, MODEL)


async def test_stream_matches_the_sdk_and_reads_the_documented_answer(
    recorder: tuple[Recorder, str], sdk: Client, http_client: httpx.AsyncClient
) -> None:
    fake, url = recorder
    fake.answers["stream"] = streamed(url)
    received = b"".join([chunk async for chunk in adapter(url, http_client).stream(VOICE_REF, TEXT)])
    ours = only(fake.to("stream"))
    parts_v1 = list(synthesize_v1(stream=True))
    parts_v2 = list(sdk.audio.tts.http.stream(TEXT, model=MODEL, voice=VOICE))

    theirs = fake.to("stream")[1:]
    assert [shape(r) for r in theirs] == [shape(ours)] * 2
    assert [r.json()["input"] for r in theirs] == [ours.json()["input"]] * 2
    assert ours.headers["x-dashscope-sse"] == "enable"
    from_v1 = b"".join(base64.b64decode(part.output.audio.data or "") for part in parts_v1)
    from_v2 = b"".join(part.audio or b"" for part in parts_v2)
    assert received == from_v1 == from_v2 == PCM


# Error answers (providers.md error catalogue [Q7][Q11]; "Invalid voice specified": [Q16]) and what the adapter
# must make of them. DashScope answers a request that asked for SSE with an SSE error body.
SYNTHESIS_ERRORS = [
    (400, "BadRequest.VoiceNotFound", "Voice 'x' not found.", VoiceNotFoundError),
    (400, "InvalidParameter", "Invalid voice specified", VoiceNotFoundError),
    (404, "ModelNotFound", "Model can not be found.", ModelRetiredError),
    (400, "DataInspectionFailed", "Input or output data may contain inappropriate content.", PermanentProviderError),
    (429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later.", TransientProviderError),
]


def sdk_error(call: Callable[[], Any]) -> tuple[str | None, int | None, str | None]:
    """``(code, status, request_id)`` as an SDK call reports a failure: the 1.x surface answers with it, the
    2.0 client raises it."""
    try:
        answer = call()
    except APIStatusError as error:
        return error.code, error.status_code, error.request_id
    return answer.code, int(answer.status_code), answer.request_id


async def adapter_error(call: Callable[[], Any]) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        await call()
    return raised.value


@pytest.mark.parametrize(("status", "code", "message", "expected"), SYNTHESIS_ERRORS)
@pytest.mark.parametrize(("kind", "as_sse"), [("synthesize", False), ("stream", True), ("stream", False)])
async def test_a_synthesis_error_answer_is_read_as_the_sdk_reads_it(
    recorder: tuple[Recorder, str],
    sdk: Client,
    http_client: httpx.AsyncClient,
    kind: str,
    as_sse: bool,
    status: int,
    code: str,
    message: str,
    expected: type[ProviderError],
) -> None:
    """The same answer gives the SDK and the adapter the same code, status and request id; the adapter's
    class says what to do next (enrol again for a voice or model gone, retry later when busy). A stream's error
    comes as SSE (what DashScope sends an SSE request) and as JSON (which both SDK surfaces also read)."""
    fake, url = recorder
    fake.answers[kind] = error_answer(status, code, message, as_sse=as_sse)
    provider = adapter(url, http_client)

    async def ours() -> None:
        if kind == "stream":
            _ = [chunk async for chunk in provider.stream(VOICE_REF, TEXT)]
        else:
            await provider.synthesize(VOICE_REF, TEXT)

    error = await adapter_error(ours)
    v1 = sdk_error(lambda: next(iter(synthesize_v1(stream=True))) if kind == "stream" else synthesize_v1(stream=False))
    http = sdk.audio.tts.http
    v2 = sdk_error(
        lambda: (
            list(http.stream(TEXT, model=MODEL, voice=VOICE))
            if kind == "stream"
            else http.synthesize(TEXT, model=MODEL, voice=VOICE)
        )
    )

    assert v1 == v2 == (code, status, REQUEST_ID)
    assert (type(error), error.provider_code, error.http_status, error.request_id) == (
        expected,
        code,
        status,
        REQUEST_ID,
    )


@pytest.mark.parametrize(("status_line", "sdk_status"), [(":HTTP_STATUS/400", 200), ("status:400", 400)])
async def test_an_error_event_after_audio_is_read_as_the_sdk_reads_it(
    recorder: tuple[Recorder, str], sdk: Client, http_client: httpx.AsyncClient, status_line: str, sdk_status: int
) -> None:
    """A stream that fails after audio began: a 200 whose later event is ``event:error``, its status given as
    DashScope's ``:HTTP_STATUS`` comment or as the ``status:`` field the SDK reads. The 2.0 client skips SSE
    comments, so without a ``status:`` field it reports the stream's own 200 (``_audio_stream_error``); the code
    still decides the class."""
    fake, url = recorder
    first = {"output": {"finish_reason": "null", "audio": {"data": base64.b64encode(PCM).decode()}}}
    failure = error_body("DataInspectionFailed", "Output data may contain inappropriate content.")
    fake.answers["stream"] = Streamed(
        200,
        [
            sse(("result", ":HTTP_STATUS/200", {**first, "request_id": REQUEST_ID})),
            sse(("error", status_line, failure)),
        ],
        SSE_HEADERS,
    )
    received: list[bytes] = []

    async def ours() -> None:
        async for chunk in adapter(url, http_client).stream(VOICE_REF, TEXT):
            received.append(chunk)

    error = await adapter_error(ours)
    with pytest.raises(APIStatusError) as theirs:
        list(sdk.audio.tts.http.stream(TEXT, model=MODEL, voice=VOICE))

    assert received == [PCM]
    assert (theirs.value.code, theirs.value.status_code) == ("DataInspectionFailed", sdk_status)
    assert (type(error), error.provider_code, error.http_status, error.request_id) == (
        PermanentProviderError,
        "DataInspectionFailed",
        400,
        REQUEST_ID,
    )


@pytest.mark.parametrize(
    ("kind", "status", "code", "expected"),
    [
        ("create", 400, "Audio.PreprocessError", PermanentProviderError),
        ("list", 401, "InvalidApiKey", PermanentProviderError),
        ("delete", 400, "BadRequest.VoiceNotFound", VoiceNotFoundError),
    ],
)
async def test_a_customization_error_answer_is_read_as_the_sdk_reads_it(
    recorder: tuple[Recorder, str],
    http_client: httpx.AsyncClient,
    kind: str,
    status: int,
    code: str,
    expected: type[ProviderError],
) -> None:
    fake, url = recorder
    fake.answers |= {
        "list": json_response(200, NO_VOICES),
        kind: error_answer(status, code, "x", as_sse=False),
    }
    provider = adapter(url, http_client)
    calls = {
        "create": lambda: provider.enrol([SAMPLE], name="Ada", language="zh", transcript=None, key="k-err"),
        "list": provider.list,
        "delete": lambda: provider.delete(VOICE),
    }
    error = await adapter_error(calls[kind])
    theirs = sdk_error(lambda: customization_v1(only(fake.to(kind)).json()["input"]))

    assert theirs == (code, status, REQUEST_ID)
    assert (type(error), error.provider_code, error.http_status, error.request_id) == (
        expected,
        code,
        status,
        REQUEST_ID,
    )
