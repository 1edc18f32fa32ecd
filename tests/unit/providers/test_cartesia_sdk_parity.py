"""Cartesia as the official SDK speaks it: every call voicegate's adapter makes, beside the same call made
through ``cartesia==4.2.0`` (both against a capturing ``httpx.MockTransport``), must match on method, path,
query, auth header, ``Cartesia-Version`` and the body's field names and types; and the adapter must read
the answers the SDK's own types describe, and the error bodies Cartesia's docs show.

The SDK sends ``cartesia-version: 2026-08-14`` (``_client.py``, ``AsyncCartesia.default_headers``), a
version Cartesia's API reference does not list (its enum ends at ``2026-03-01``, the version voicegate
pins): the SDK is given voicegate's version through its ``default_headers``, which replace its own.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, get_args

import httpx
import msgspec
import pytest
from cartesia import AsyncCartesia
from cartesia.types import Voice, VoiceMetadata
from cartesia.types.tts_generate_params import TTSGenerateParams
from cartesia.types.tts_model import TTSModel
from pydantic import TypeAdapter

from backend.providers.base import ProviderVoice
from backend.providers.cartesia import CartesiaProvider
from backend.providers.enrolment import key_marker
from backend.providers.errors import (
    ModelRetiredError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    VoiceNotFoundError,
)
from fakes.audio import tone_pcm, tone_wav
from fakes.core import parse_multipart
from tests.provider_support import CARTESIA_KEY, FAST_POLICY, settings_for, wav_sample

BASE_URL = "https://api.cartesia.ai"
VERSION = "2026-03-01"
# Example ids and dates of Cartesia's API reference (voices/clone, tts/websocket).
VOICE_ID = "a0e99841-438c-4a64-b679-ae501e7d6091"
OTHER_ID = "40248dd5-bfe9-48e2-93f7-ea3f9d5c7f72"
CREATED = "2024-11-13T07:06:22.476564Z"
KEY = "attempt-1"

Answer = Callable[[httpx.Request], httpx.Response]


def voice_body(voice_id: str = VOICE_ID, description: str = "") -> dict[str, Any]:
    """A ``Voice`` with every field ``cartesia/types/voice.py`` (4.2.0) requires."""
    return {
        "id": voice_id,
        "access": "private",
        "created_at": CREATED,
        "description": description,
        "is_owner": True,
        "language": "fr",
        "locales": [{"locale": "fr-FR", "is_native": True}],
        "name": "Ada",
        "tagline": "",
        "visibility": "owner",
    }


def metadata_body(description: str) -> dict[str, Any]:
    """A ``VoiceMetadata`` with every field ``cartesia/types/voice_metadata.py`` (4.2.0) requires."""
    voice = {k: v for k, v in voice_body(description=description).items() if k not in {"is_owner", "locales"}}
    return voice | {"user_id": "user_2b4f0c1e"}


def pages(*pages: list[dict[str, Any]]) -> Answer:
    """``GET /voices`` as ``cartesia/pagination.py``'s ``CursorIDPage`` reads it: ``data`` only; the page
    after the last id is empty."""

    def answer(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("starting_after")
        index = 0 if after is None else 1 + [page[-1]["id"] if page else None for page in pages].index(after)
        return httpx.Response(200, json={"data": pages[index] if index < len(pages) else []})

    return answer


def routes(list_answer: Answer | None = None) -> Answer:
    """Cartesia's success answers, by route."""

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path == "/voices":
            return (list_answer or pages([voice_body()]))(request)
        if request.method == "GET":
            return httpx.Response(200, json=voice_body())
        if request.method == "DELETE":
            return httpx.Response(204)
        if path == "/voices/clone":
            return httpx.Response(200, json=metadata_body(f"voicegate voice {key_marker(KEY)}"))
        raw = msgspec.json.decode(request.content)["output_format"]["container"] == "raw"
        audio, mime = (tone_pcm(0.2, 24000), "audio/pcm") if raw else (tone_wav(0.2, 24000), "audio/wav")
        return httpx.Response(200, content=audio, headers={"content-type": mime})

    return answer


class Capture:
    """An httpx client whose transport records each request and answers it with ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = answer
        self.client = httpx.AsyncClient(transport=httpx.MockTransport(self._handle))

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self._answer(request)

    def to(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]


def skeleton(value: Any) -> Any:
    """A JSON value's field names and types, without its values."""
    if isinstance(value, dict):
        return {k: skeleton(v) for k, v in value.items()}
    if isinstance(value, list):
        return [skeleton(v) for v in value]
    return type(value).__name__


def shape(request: httpx.Request) -> dict[str, Any]:
    """What must match between the SDK's request and the adapter's."""
    content_type = request.headers.get("content-type", "")
    body: Any = None
    if content_type.startswith("multipart/form-data"):
        body = {
            p.name: "file" if p.filename is not None else "text" for p in parse_multipart(content_type, request.content)
        }
    elif request.content:
        body = skeleton(msgspec.json.decode(request.content))
    auth = {
        name: value.split(" ", 1)[0]
        for name, value in request.headers.items()
        if name in {"authorization", "x-api-key"}
    }
    return {
        "method": request.method,
        "path": request.url.path,
        "query": sorted(request.url.params.multi_items()),
        "auth": auth,
        "cartesia-version": request.headers.get("cartesia-version"),
        "body": body,
    }


async def both(
    sdk_call: Callable[[AsyncCartesia], Awaitable[object]],
    our_call: Callable[[CartesiaProvider], Awaitable[object]],
    answer: Answer | None = None,
) -> tuple[Capture, Capture]:
    """The requests of one call made through the SDK and through the adapter."""
    sdk_seen, our_seen = Capture(answer or routes()), Capture(answer or routes())
    async with AsyncCartesia(
        api_key=CARTESIA_KEY,
        base_url=BASE_URL,
        http_client=sdk_seen.client,
        max_retries=0,
        default_headers={"cartesia-version": VERSION},
    ) as sdk:
        await sdk_call(sdk)
    async with our_seen.client:
        await our_call(adapter(our_seen.client))
    return sdk_seen, our_seen


def adapter(client: httpx.AsyncClient, version: str = VERSION) -> CartesiaProvider:
    settings = settings_for(CARTESIA_API_KEY=CARTESIA_KEY, CARTESIA_BASE_URL=BASE_URL, CARTESIA_VERSION=version)
    return CartesiaProvider(settings.sections["cartesia"], client, policy=FAST_POLICY, rng=random.Random(7))  # noqa: S311


def voice(model: str | None = "sonic-3.5") -> ProviderVoice:
    return ProviderVoice(provider="cartesia", voice_id=VOICE_ID, language="fr", target_model=model)


def assert_same(sdk: list[httpx.Request], ours: list[httpx.Request]) -> None:
    assert [shape(r) for r in ours] == [shape(r) for r in sdk]


async def test_the_sdk_names_its_own_newer_version_which_the_parity_calls_replace() -> None:
    seen = Capture(routes())
    async with AsyncCartesia(api_key=CARTESIA_KEY, base_url=BASE_URL, http_client=seen.client, max_retries=0) as sdk:
        await sdk.voices.delete(VOICE_ID)
    assert seen.requests[0].headers["cartesia-version"] == "2026-08-14"
    assert adapter(seen.client).version == VERSION


async def test_clone_is_the_sdks_multipart() -> None:
    sample = wav_sample()

    async def sdk_clone(sdk: AsyncCartesia) -> object:
        clip = (sample.filename, sample.data, sample.mime_type)
        return await sdk.voices.clone(clip=clip, language="fr", name="Ada", description="voicegate voice")

    async def our_clone(ours: CartesiaProvider) -> object:
        return await ours.enrol([sample], name="Ada", language="fr-FR", transcript=None, key=KEY)

    # The adapter looks its key up first (an empty list), so nothing is cloned twice.
    sdk, ours = await both(sdk_clone, our_clone, answer=routes(pages()))
    assert_same(sdk.to("POST", "/voices/clone"), ours.to("POST", "/voices/clone"))
    assert shape(ours.to("POST", "/voices/clone")[0])["body"] == {
        "name": "text",
        "language": "text",
        "description": "text",
        "clip": "file",
    }


async def test_list_pages_as_the_sdks_pager_until_an_empty_page() -> None:
    """Fails on main's adapter: it stopped after the first page, lacking ``has_more`` (one request, not
    three, so ``find`` missed the voice on the second page)."""
    answer = pages([voice_body()], [voice_body(OTHER_ID)])

    async def sdk_list(sdk: AsyncCartesia) -> object:
        return [v async for v in sdk.voices.list(limit=100, is_owner=True)]

    async def our_list(ours: CartesiaProvider) -> object:
        return await ours.list()

    sdk, ours = await both(sdk_list, our_list, answer=answer)
    assert len(sdk.requests) == 3
    assert_same(sdk.requests, ours.requests)


async def test_get_and_delete_are_the_sdks() -> None:
    async def sdk_calls(sdk: AsyncCartesia) -> object:
        await sdk.voices.get(VOICE_ID)
        return await sdk.voices.delete(VOICE_ID)

    async def our_calls(ours: CartesiaProvider) -> object:
        await ours.get(VOICE_ID)
        return await ours.delete(VOICE_ID)

    sdk, ours = await both(sdk_calls, our_calls)
    assert [r.method for r in ours.requests] == ["GET", "DELETE"]
    assert_same(sdk.requests, ours.requests)


@pytest.mark.parametrize("container", ["wav", "raw"])
async def test_synthesis_and_stream_are_the_sdks_generate(container: str) -> None:
    """``synthesize`` (``wav``) and ``stream`` (``raw``, read as it streams) are ``tts.generate``: the body is
    a valid ``TTSGenerateParams`` and its model one the SDK names (``TTSModel``). Fails on main's adapter:
    it spoke a voice without a recorded model with ``sonic-2``, which the SDK no longer names."""
    output_format = {"container": container, "encoding": "pcm_s16le", "sample_rate": 24000}
    unrecorded = voice(model=None)

    async def sdk_generate(sdk: AsyncCartesia) -> object:
        async with sdk.tts.with_streaming_response.generate(
            model_id="sonic-3.5",
            transcript="Bonjour",
            voice={"mode": "id", "id": VOICE_ID},
            output_format=output_format,  # type: ignore[arg-type]
            language="fr",
        ) as response:
            return [chunk async for chunk in response.iter_bytes()]

    async def our_generate(ours: CartesiaProvider) -> object:
        if container == "wav":
            return await ours.synthesize(unrecorded, "Bonjour")
        return [chunk async for chunk in ours.stream(unrecorded, "Bonjour")]

    sdk, ours = await both(sdk_generate, our_generate)
    assert_same(sdk.requests, ours.requests)
    body = msgspec.json.decode(ours.requests[0].content)
    TypeAdapter(TTSGenerateParams).validate_python(body)
    assert body["model_id"] in get_args(get_args(TTSModel)[0])
    assert body["output_format"] == output_format


# Recorded answers: bodies the SDK's types accept, and error bodies from Cartesia's docs.


@asynccontextmanager
async def answered(answer: Answer) -> AsyncIterator[CartesiaProvider]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        yield adapter(client)


async def test_the_sdks_voice_and_voice_metadata_are_read() -> None:
    described = f"voicegate voice {key_marker(KEY)}"
    Voice.model_validate(voice_body())
    VoiceMetadata.model_validate(metadata_body(described))
    async with answered(routes(pages([voice_body(OTHER_ID)]))) as ours:
        made = await ours.enrol([wav_sample()], name="Ada", language="fr", transcript=None, key=KEY)
        got = await ours.get(VOICE_ID)
    assert (made.voice_id, made.enrolment_key, made.target_model) == (VOICE_ID, KEY, "sonic-3.5")
    assert (made.name, made.language, made.created_at) == ("Ada", "fr", CREATED)
    assert made.metadata["description"] == described
    assert (got.voice_id, got.name, got.language, got.created_at) == (VOICE_ID, "Ada", "fr", CREATED)
    assert got.metadata == {"description": "", "cartesia_version": VERSION, "language": "fr"}


async def test_the_2025_04_16_page_is_read_too() -> None:
    """``{"data", "has_more", "next_page"}`` (API reference, 2024-11-13/2025-04-16 ``voices/list``)."""
    old = {"id": VOICE_ID, "is_owner": True, "is_public": False, "name": "Ada", "description": None}
    old |= {"created_at": CREATED, "language": "fr"}

    def answer(request: httpx.Request) -> httpx.Response:
        last = "starting_after" in request.url.params
        return httpx.Response(200, json={"data": [] if last else [old], "has_more": False, "next_page": None})

    async with answered(answer) as ours:
        assert [v.voice_id for v in await ours.list()] == [VOICE_ID]


def error(status: int, body: dict[str, Any] | str) -> Answer:
    def answer(_: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    return answer


# docs.cartesia.ai/use-the-api/api-errors, "HTTP error response".
CONCURRENCY = {
    "error_code": "concurrency_limited",
    "title": "Too many concurrent requests",
    "message": "You have exceeded your plan's concurrency limit.",
    "request_id": "550e8400-e29b-41d4-a716-446655440000",
}
# docs.cartesia.ai/build-with-cartesia/tts-models/api-changes, "Sunsetted models will start to error".
SUNSET = {
    "error_code": "model_sunsetted",
    "message": "The requested model has been sunsetted and is no longer available.",
    "title": "Model sunsetted",
    "request_id": "897525c5-7bbe-4919-a801-95170b472373",
}


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (429, CONCURRENCY, TransientProviderError, "concurrency_limited"),
        (400, SUNSET, ModelRetiredError, "model_sunsetted"),
        # Before 2026-03-01: "errors may be plain text (for example Title: Message)" (api-errors).
        (
            400,
            "Model sunsetted: The requested model has been sunsetted and is no longer available.",
            ModelRetiredError,
            "Model sunsetted",
        ),
        # The docs' HTTP error object with a null code (allowed: "Can be null"); title and message are ours.
        (
            404,
            {**CONCURRENCY, "error_code": None, "title": "Not Found", "message": "Voice not found"},
            VoiceNotFoundError,
            "Not Found",
        ),
        (
            401,
            {**CONCURRENCY, "error_code": None, "title": "Unauthorized", "message": "Invalid API key"},
            PermanentProviderError,
            "Unauthorized",
        ),
    ],
)
async def test_error_bodies_are_classified(
    status: int, body: dict[str, Any] | str, kind: type[ProviderError], code: str
) -> None:
    """The plain-text sunset fails on main's adapter: it read ``model_sunsetted`` from the JSON code only,
    so a ``2025-04-16`` voice on a sunset model failed for good instead of being cloned again."""
    async with answered(error(status, body)) as ours:
        with pytest.raises(kind) as raised:
            await ours.synthesize(voice(), "Bonjour")
    assert type(raised.value) is kind
    assert raised.value.provider_code == code
    assert raised.value.http_status == status
    if isinstance(body, dict):
        assert raised.value.request_id == body["request_id"]
