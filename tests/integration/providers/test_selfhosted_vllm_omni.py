"""The `selfhosted` adapter's requests pinned to vLLM-Omni's own request models, and its streaming as
vLLM-Omni streams: audio as it is made only when asked with `stream_format: "audio"`.

Sources (github.com/vllm-project/vllm-omni):
  * vllm_omni/entrypoints/openai/protocol/audio.py @ 0131cb5560450800b800e889fb849ea2c851bd3f:
    `OpenAICreateSpeechRequest` (the JSON body of `POST /v1/audio/speech`): `input: str`, `model: str | None`,
    `voice: str | None` (alias `speaker`), `response_format: Literal["wav", "pcm", "flac", "mp3", "opus"]`,
    `stream_format: Literal["sse", "audio"] | None = None`, `stream: bool = False`, `ref_audio: str | list[str]`,
    `ref_text: str | None`, `x_vector_only_mode: bool | None`, ...; `is_raw_audio_stream()` is
    `stream_format == "audio"`, `is_sse_stream()` is `stream or stream_format == "sse"` otherwise, and any
    stream needs `response_format` `pcm` or `wav`.
  * docs/serving/speech_api.md @ 078de2d14c2fcc670c1e0dd492e1b84a69c69d15: "Raw audio stream
    (`stream_format="audio"`). Streams raw audio bytes (PCM or WAV) as they are decoded"; without
    `stream`/`stream_format` the complete clip comes back; `stream: true` alone gives `speech.audio.*` SSE.
  * vllm_omni/entrypoints/openai/serving_speech.py @ 01bc4171df2a6ee9799a6994eb61eb10b6931641: a release
    from before `stream_format` chose the answer, streaming on `request.stream` alone (hence the adapter sends
    both); `upload_voice` and `_validate_qwen_tts_request` (a Base-task reference without `ref_text` is
    refused unless `x_vector_only_mode`).
  * vllm_omni/entrypoints/openai/api_server.py @ 005fd8eae1384e1010cfb1f543b3d7f7540f7817: the routes
    `GET /v1/audio/voices` (`{"voices": [...], "uploaded_voices": [...]}`), `POST /v1/audio/voices` (form:
    `audio_sample: UploadFile | None`, `speaker_embedding: str | None`, `consent: str` (required),
    `name: str` (required), `ref_text: str | None`, `speaker_description: str | None`) and
    `DELETE /v1/audio/voices/{name}`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import struct
from collections.abc import Iterator
from contextlib import aclosing
from typing import Any

import httpx
import pytest

from backend.providers.base import ProviderVoice
from backend.providers.enrolment import selfhosted_voice_name
from backend.providers.selfhosted import NOT_AUDIO
from backend.providers.selfhosted_answers import data_url
from fakes import SelfhostedFake, serve
from fakes.audio import tone_wav
from fakes.core import RecordedRequest
from fakes.selfhosted import MODEL, SelfhostedVoice
from tests.integration.providers.test_selfhosted_adapter import KEY, enrol, make

TEXT = "The first move is what sets everything in motion."  # 49 characters: 2.45 s of fake audio
EXPECTED_BYTES = int(0.05 * len(TEXT) * 24000) * 2
#: Long enough for any loaded machine to deliver a chunk the fake has sent; only a failing run waits it out.
FIRST_CHUNK_BOUND_S = 20.0

_STR, _OPT_STR, _BOOL = (str,), (str, type(None)), (bool, type(None))
#: `OpenAICreateSpeechRequest`'s fields (those an adapter may send), each with the JSON types it accepts.
SPEECH_FIELDS: dict[str, tuple[type, ...]] = {
    "input": _STR,
    "model": _OPT_STR,
    "voice": _OPT_STR,
    "instructions": _OPT_STR,
    "response_format": _STR,
    "stream_format": _OPT_STR,
    "stream": (bool,),
    "language": _OPT_STR,
    "task_type": _OPT_STR,
    "ref_audio": _OPT_STR,
    "ref_text": _OPT_STR,
    "x_vector_only_mode": _BOOL,
}
RESPONSE_FORMATS = {"wav", "pcm", "flac", "mp3", "opus"}
#: `POST /v1/audio/voices`' form fields: name -> (required, a file part).
UPLOAD_FIELDS = {
    "audio_sample": (False, True),
    "speaker_embedding": (False, False),
    "consent": (True, False),
    "name": (True, False),
    "ref_text": (False, False),
    "speaker_description": (False, False),
}


def fits_speech_request(body: dict[str, Any]) -> None:
    """``body`` is one `OpenAICreateSpeechRequest` accepts as the adapter means it: known fields of the declared
    types (pydantic drops an unknown field silently, so an unknown one is a misunderstanding), and the model's
    own validators (streaming only as `pcm`/`wav`)."""
    assert set(body) <= set(SPEECH_FIELDS), set(body) - set(SPEECH_FIELDS)
    for name, value in body.items():
        assert isinstance(value, SPEECH_FIELDS[name]), (name, value)
    assert body["response_format"] in RESPONSE_FORMATS
    assert body.get("stream_format") in {None, "sse", "audio"}
    if body.get("stream_format") is not None or body.get("stream"):
        assert body["response_format"] in {"pcm", "wav"}


def fits_voice_upload(request: RecordedRequest) -> None:
    fields = request.form_fields()
    assert set(fields) <= set(UPLOAD_FIELDS), set(fields) - set(UPLOAD_FIELDS)
    for name, (required, is_file) in UPLOAD_FIELDS.items():
        assert name in fields or not required, name
        for part in fields.get(name, []):
            assert (part.filename is not None) == is_file, name
    assert ("audio_sample" in fields) != ("speaker_embedding" in fields)  # "mutually exclusive", one required


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[SelfhostedFake, str]]:
    fake = SelfhostedFake(**getattr(request, "param", {}))
    with serve(fake) as url:
        try:
            yield fake, url
        finally:
            fake.release()  # a test that failed while the fake held its synthesis lets it end


@pytest.mark.parametrize("served", [{"mode": "registry"}], indirect=True)
async def test_registry_requests_fit_vllm_omnis_request_models(
    served: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = served
    provider, _ = make(url, http_client, rng)

    voice = await enrol(provider)
    await provider.synthesize(voice, "Good morning")
    streamed = b"".join([chunk async for chunk in provider.stream(voice, TEXT)])
    await provider.list()
    await provider.delete(voice.voice_id)

    name = selfhosted_voice_name(KEY)
    fits_voice_upload(fake.requests_to("POST", "/v1/audio/voices")[0])
    assert all(r.body == b"" and r.query == {} for r in fake.requests_to("GET", "/v1/audio/voices"))
    assert [r.path for r in fake.requests_to("DELETE", "/v1/audio/voices")] == [f"/v1/audio/voices/{name}"]
    whole, stream = (r.json() for r in fake.requests_to("POST", "/v1/audio/speech"))
    for body in (whole, stream):
        fits_speech_request(body)
    assert whole == {"input": "Good morning", "response_format": "wav", "voice": name, "model": MODEL}
    assert stream == {
        "input": TEXT,
        "response_format": "pcm",
        "voice": name,
        "model": MODEL,
        "stream_format": "audio",
        "stream": True,
    }
    assert len(streamed) == EXPECTED_BYTES


@pytest.mark.parametrize("served", [{"mode": "inline"}], indirect=True)
async def test_inline_requests_fit_vllm_omnis_request_model_with_and_without_a_transcript(
    served: tuple[SelfhostedFake, str], http_client: httpx.AsyncClient, rng: random.Random
) -> None:
    fake, url = served
    with_text, _ = make(url, http_client, rng)
    without_text, _ = make(url, http_client, rng)

    await with_text.synthesize(await enrol(with_text), "Good morning")
    # Without a transcript vLLM-Omni clones a Base voice only from the speaker embedding, and only when asked.
    untranscribed = await enrol(without_text, transcript=None)
    await without_text.synthesize(untranscribed, "Good morning")
    streamed = b"".join([chunk async for chunk in without_text.stream(untranscribed, TEXT)])

    sent = [r.json() for r in fake.requests_to("POST", "/v1/audio/speech")]
    for body in sent:
        fits_speech_request(body)
        assert body["ref_audio"].startswith("data:audio/wav;base64,")
    # Each adapter first proves, once, that the server reads `ref_audio` (a reference that is no audio).
    probe = data_url(NOT_AUDIO, "audio/wav")
    bodies = [body for body in sent if body["ref_audio"] != probe]
    assert len(sent) - len(bodies) == 2
    assert [sorted(set(body) - {"input", "model", "ref_audio", "response_format"}) for body in bodies] == [
        ["ref_text"],
        ["x_vector_only_mode"],
        ["stream", "stream_format", "x_vector_only_mode"],
    ]
    assert (bodies[0]["ref_text"], bodies[1]["x_vector_only_mode"]) == ("Hello there.", True)
    assert [speech["voice"] for speech in fake.speeches] == ["inline"] * 3
    assert len(streamed) == EXPECTED_BYTES


@pytest.mark.parametrize("served", [{"mode": "registry"}], indirect=True)
async def test_the_first_audio_arrives_while_the_server_has_not_made_the_rest(
    served: tuple[SelfhostedFake, str], rng: random.Random
) -> None:
    """The fake makes one chunk, then holds until released: a client that asked for raw bytes hears that chunk
    while the clip is provably unfinished; one that did not hears nothing until all of it is made."""
    fake, url = served
    fake.voices["v1"] = SelfhostedVoice("v1", "consent-1", tone_wav(3.0, 24000), "audio/wav", "Hello there.")
    fake.hold_after = 1
    voice = ProviderVoice(provider="selfhosted", voice_id="v1", target_model=MODEL)
    # Reads wait longer than the bound, so a run that hears nothing fails on the bound, with the fake's account.
    client = httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=2 * FIRST_CHUNK_BOUND_S), trust_env=False)

    async with client, aclosing(make(url, client, rng)[0].stream(voice, TEXT)) as chunks:
        try:
            first = await asyncio.wait_for(anext(chunks), FIRST_CHUNK_BOUND_S)
        except TimeoutError:
            speech = fake.speeches[-1]
            pytest.fail(
                f"no audio while the server held at chunk {speech['rendered']} of {speech['chunks']} "
                f"(asked stream_format={speech['stream_format']!r}, stream={speech['stream']!r})"
            )
        speech = fake.speeches[-1]
        assert first
        assert (speech["rendered"], speech["stream_format"]) == (1, "audio")
        assert speech["rendered"] < speech["chunks"] == 25
        fake.release()
        rest = b"".join([chunk async for chunk in chunks])
    assert len(first + rest) == EXPECTED_BYTES
    assert speech["rendered"] == speech["chunks"]


@pytest.mark.parametrize(
    ("fields", "media_type", "streamed"),
    [
        ({"response_format": "pcm"}, "audio/pcm", False),
        ({"response_format": "wav"}, "audio/wav", False),
        ({"response_format": "pcm", "stream_format": "audio"}, "audio/pcm", True),
        ({"response_format": "wav", "stream_format": "audio"}, "audio/wav", True),
        ({"response_format": "pcm", "stream": True, "stream_format": "audio"}, "audio/pcm", True),
        ({"response_format": "pcm", "stream": True}, "text/event-stream", True),
        ({"response_format": "pcm", "stream_format": "sse"}, "text/event-stream", True),
    ],
)
def test_the_fake_answers_as_vllm_omnis_stream_and_stream_format_say(
    fields: dict[str, Any], media_type: str, streamed: bool
) -> None:
    fake = SelfhostedFake("registry")
    fake.voices["v1"] = SelfhostedVoice("v1", "consent-1", tone_wav(3.0, 24000), "audio/wav", "Hello there.")
    with serve(fake) as url, httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        response = client.post("/v1/audio/speech", json={"input": TEXT, "voice": "v1", **fields})
    assert (response.status_code, response.headers["content-type"]) == (200, media_type)
    # A whole clip has its length up front; a stream goes out in chunks as they are made.
    assert ("content-length" in response.headers) is not streamed
    assert (len(fake.streamed) == 1) is streamed
    if media_type == "text/event-stream":
        events = [block.split("\n") for block in response.text.strip().split("\n\n")]
        assert [lines[0] for lines in events] == ["event: speech.audio.delta"] * 25 + ["event: speech.audio.done"]
        pcm = b"".join(base64.b64decode(json.loads(lines[1][6:])["audio"]) for lines in events[:-1])
    elif fields["response_format"] == "wav":
        sizes = struct.unpack("<I", response.content[4:8]) + struct.unpack("<I", response.content[40:44])
        assert sizes == ((0xFFFFFFFF, 0xFFFFFFFF) if streamed else (EXPECTED_BYTES + 36, EXPECTED_BYTES))
        pcm = response.content[44:]
    else:
        pcm = response.content
    assert len(pcm) == EXPECTED_BYTES


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"response_format": "mp3", "stream_format": "audio"}, "response_format"),
        ({"response_format": "mp3", "stream": True}, "response_format"),
        ({"response_format": "aac"}, "response_format"),
        ({"response_format": "pcm", "stream_format": "chunks"}, "stream_format"),
    ],
)
def test_the_fake_refuses_what_vllm_omnis_request_model_refuses(fields: dict[str, Any], param: str) -> None:
    fake = SelfhostedFake("registry")
    fake.voices["v1"] = SelfhostedVoice("v1", "consent-1", tone_wav(3.0, 24000), "audio/wav", "Hello there.")
    with serve(fake) as url, httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        response = client.post("/v1/audio/speech", json={"input": TEXT, "voice": "v1", **fields})
    assert (response.status_code, response.json()["error"]["param"]) == (400, param)
    assert fake.speeches == []
