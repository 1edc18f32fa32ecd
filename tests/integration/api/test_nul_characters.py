"""A NUL character (U+0000), which PostgreSQL's text cannot hold, in any text a request carries (a JSON
field, a form field, the file part's Content-Type, a User-Agent kept with a consent) is a 400 naming the
field, and nothing is written; the embedded Storage stand-in refuses one in what it keeps too."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from devkit.db import Conn, one
from fakes.audio import tone_wav
from tests.integration.api.conftest import User

Client = AsyncTestClient  # type: ignore[type-arg]
NUL = "Ada\u0000Lovelace"
WAV = tone_wav(4.0, 24000)
TABLES = (
    "reflections",
    "voices",
    "voice_consents",
    "voice_samples",
    "voice_clone_attempts",
    "synthesis_jobs",
    "webhook_endpoints",
    "storage.objects",
    "voicegate.idempotency_keys",
)


def rows(sql: Conn) -> dict[str, int]:
    """How many rows each table the requests could write holds."""
    return {table: one(sql, f"select count(*) as n from {table}")["n"] for table in TABLES}


@dataclass(frozen=True)
class Ready:
    """A user with a reflection and an uploaded sample, for the routes that name one."""

    user: User
    reflection_id: str
    sample_id: str


@pytest.fixture
async def ready(client: Client, make_user: Callable[[], User]) -> Ready:
    user = make_user()
    reflection = await client.post("/v1/reflections", json={"name": "r"}, headers=user.headers)
    sample = await client.post(
        "/api/v1/voice-samples",
        data={"consent": "true"},
        files={"file": ("me.wav", WAV, "audio/wav")},
        headers=user.headers,
    )
    assert (reflection.status_code, sample.status_code) == (201, 202), (reflection.text, sample.text)
    return Ready(user, reflection.json()["id"], sample.json()["sampleId"])


Body = Callable[[Ready], tuple[str, str, dict[str, Any]]]
JSON_FIELDS: list[tuple[str, Body, str]] = [
    ("reflection name", lambda r: ("POST", "/v1/reflections", {"name": NUL}), "name"),
    ("upload-url name", lambda r: ("POST", "/api/clone/upload-url", {"name": NUL, "consent": True}), "name"),
    (
        "upload-url subject_name",
        lambda r: ("POST", "/api/clone/upload-url", {"name": "Ada", "subject_name": NUL, "consent": True}),
        "subject_name",
    ),
    (
        "finalize transcript",
        lambda r: ("POST", "/api/clone/finalize", {"voice_id": str(uuid.uuid4()), "transcript": NUL}),
        "transcript",
    ),
    ("finalize name", lambda r: ("POST", "/api/clone/finalize", {"voice_id": str(uuid.uuid4()), "name": NUL}), "name"),
    ("clone text", lambda r: ("POST", "/api/v1/clone", {"sampleId": r.sample_id, "text": NUL}), "text"),
    ("clone name", lambda r: ("POST", "/api/v1/clone", {"sampleId": r.sample_id, "text": "Hi.", "name": NUL}), "name"),
    ("webhook url", lambda r: ("POST", "/v1/webhooks", {"url": f"http://127.0.0.1:9/{NUL}"}), "url"),
    (
        "custom voice name",
        lambda r: (
            "PATCH",
            f"/v1/reflections/{r.reflection_id}/voice",
            {"provider": "local", "voice_id": "v", "name": NUL},
        ),
        "name",
    ),
    ("reflection speech text", lambda r: ("POST", f"/v1/reflections/{r.reflection_id}/speech", {"text": NUL}), "text"),
    ("speech text", lambda r: ("POST", "/api/v1/speech", {"voiceId": str(uuid.uuid4()), "text": NUL}), "text"),
]


def refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "validation_failed"
    assert problem["detail"].startswith(f"{field}: "), problem["detail"]
    assert "NUL character" in problem["detail"]


@pytest.mark.parametrize(("body", "field"), [case[1:] for case in JSON_FIELDS], ids=[case[0] for case in JSON_FIELDS])
async def test_a_nul_in_a_json_field_is_a_400_naming_it(
    client: Client, ready: Ready, sql: Conn, body: Body, field: str
) -> None:
    method, path, json = body(ready)
    before = rows(sql)

    response = await client.request(method, path, json=json, headers=ready.user.headers)

    refused(response, field)
    assert rows(sql) == before


UPLOADS = ["/api/v1/voice-samples", "/v1/reflections/{reflection_id}/voice/clone"]
FORM_FIELDS = ["name", "subject_name", "transcript"]


async def upload(
    client: Client, ready: Ready, route: str, field: str | None = None, content_type: str = "audio/wav"
) -> httpx.Response:
    """A sample upload to `route`, with a NUL in the form field `field` if one is named."""
    return await client.post(
        route.format(reflection_id=ready.reflection_id),
        data={"consent": "true", **({field: NUL} if field else {})},
        files={"file": ("me.wav", WAV, content_type)},
        headers=ready.user.headers,
    )


@pytest.mark.parametrize("route", UPLOADS)
@pytest.mark.parametrize("field", FORM_FIELDS)
async def test_a_nul_in_a_form_field_is_a_400_naming_it(
    client: Client, ready: Ready, sql: Conn, route: str, field: str
) -> None:
    before = rows(sql)

    refused(await upload(client, ready, route, field), field)
    assert rows(sql) == before


@pytest.mark.parametrize("route", UPLOADS)
async def test_the_file_parts_content_type_is_kept_only_when_it_can_be(
    client: Client, ready: Ready, sql: Conn, route: str
) -> None:
    before = rows(sql)

    with_nul = await upload(client, ready, route, content_type="audio/wa\u0000v")
    too_long = await upload(client, ready, route, content_type="audio/" + "x" * 300)

    refused(with_nul, "Content-Type of the `file` part")
    assert (too_long.status_code, too_long.json()["detail"]) == (
        400,
        "Content-Type of the `file` part: at most 255 characters",
    ), too_long.text
    assert rows(sql) == before


async def test_a_nul_in_the_user_agent_kept_with_a_consent_is_a_400(client: Client, ready: Ready, sql: Conn) -> None:
    before = rows(sql)
    headers = {**ready.user.headers, "user-agent": NUL}

    json_route = await client.post("/api/clone/upload-url", json={"name": "Ada", "consent": True}, headers=headers)
    form_route = await client.post(
        "/api/v1/voice-samples", data={"consent": "true"}, files={"file": ("me.wav", WAV, "audio/wav")}, headers=headers
    )

    refused(json_route, "User-Agent header")
    refused(form_route, "User-Agent header")
    assert rows(sql) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "audio/wav", "cache-control": "max-age=\u00003600"},
        {"content-type": "audio/wav", "x-metadata": base64.b64encode(b'{"who": "Ada\\u0000"}').decode()},
    ],
    ids=["cache-control", "x-metadata"],
)
async def test_the_storage_stand_in_refuses_a_nul_in_what_it_keeps(
    client: Client, ready: Ready, sql: Conn, headers: dict[str, str]
) -> None:
    before = rows(sql)

    response = await client.post(
        f"/storage/v1/object/voice-samples/{ready.user.id}/x/original",
        content=WAV,
        headers={**ready.user.headers, **headers},
    )

    assert response.status_code == 400, response.text
    assert (response.json()["error"], response.json()["statusCode"]) == ("InvalidRequest", "400")
    assert "NUL character" in response.json()["message"]
    assert rows(sql) == before
