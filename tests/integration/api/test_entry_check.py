"""What a request must show before its route reads its body, on every route that reads JSON (found in the app's
route table): an anonymous request is a 401 and a body over the JSON limit a 413 with not one byte of the body
received, a body that is not labelled JSON a 415, and a body sent without a length is cut off at the limit.
On 360a82a each of them was read whole first: a 9.99 MB body cost 3.2 s of the event loop before its 401."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from litestar.types import Message

from devkit.db import Conn
from tests.integration.api.conftest import User
from tests.integration.api.test_hostile_bodies import JSON_ROUTES, _concrete
from tests.integration.api.test_nul_characters import rows

Client = AsyncTestClient  # type: ignore[type-arg]
#: The JSON limit by default (VOICEGATE_JSON_BODY_BYTES).
LIMIT = 1024 * 1024
CHUNK = 64 * 1024


class Received:
    """A request's `receive`: the body in chunks, counting what the app took."""

    def __init__(self, body: bytes = b"", *, forbidden: bool = False) -> None:
        self.chunks = [body[at : at + CHUNK] for at in range(0, len(body), CHUNK)] or [b""]
        self.forbidden = forbidden
        self.taken = 0

    async def __call__(self) -> Message:
        if self.forbidden:
            raise AssertionError("the app read the body")
        if self.taken >= len(self.chunks):
            return {"type": "http.disconnect"}
        chunk = self.chunks[self.taken]
        self.taken += 1
        return {"type": "http.request", "body": chunk, "more_body": self.taken < len(self.chunks)}


async def call(
    client: Client, method: str, path: str, headers: dict[str, str], receive: Received
) -> tuple[int, dict[str, str], bytes]:
    """`method path` straight into the app's ASGI interface: the status, the headers and the body of its answer."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")] + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await client.app(scope, receive, send)  # type: ignore[arg-type]
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    answer_headers = {name.decode(): value.decode() for name, value in start["headers"]}
    return start["status"], answer_headers, body


def code_of(body: bytes) -> str:
    """The problem's `code`."""
    return str(json.loads(body).get("code"))


@pytest.mark.parametrize(("method", "route"), JSON_ROUTES)
async def test_an_anonymous_body_is_refused_before_a_byte_of_it_is_read(
    client: Client, method: str, route: str
) -> None:
    for authorization in ({}, {"authorization": "Bearer not-a-token"}):
        headers = {"content-type": "application/json", "content-length": "9990000", **authorization}
        status, _, body = await call(client, method, _concrete(route), headers, Received(forbidden=True))

        assert (status, code_of(body)) == (401, "unauthorized")


@pytest.mark.parametrize(("method", "route"), JSON_ROUTES)
async def test_a_body_announced_over_the_limit_is_refused_unread(
    client: Client, make_user: Callable[[], User], method: str, route: str
) -> None:
    user = make_user()
    headers = {"content-type": "application/json", "content-length": str(LIMIT + 1), **user.headers}

    status, _, body = await call(client, method, _concrete(route), headers, Received(forbidden=True))

    assert (status, code_of(body)) == (413, "body_too_large")


async def test_a_body_sent_without_a_length_is_cut_off_at_the_limit(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    before = rows(sql)
    name = b"x" * (4 * LIMIT)
    receive = Received(b'{"name": "' + name + b'"}')
    headers = {"content-type": "application/json", "transfer-encoding": "chunked", **user.headers}

    status, _, body = await call(client, "POST", "/v1/reflections", headers, receive)

    assert (status, code_of(body)) == (413, "body_too_large")
    assert receive.taken <= LIMIT // CHUNK + 1 < len(receive.chunks)
    assert rows(sql) == before


@pytest.mark.parametrize(("method", "route"), JSON_ROUTES)
async def test_a_body_not_labelled_json_is_a_415(
    client: Client, make_user: Callable[[], User], sql: Conn, method: str, route: str
) -> None:
    user = make_user()
    before = rows(sql)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {**user.headers, **({"content-type": content_type} if content_type else {})}
        answer = await client.request(method, _concrete(route), content=b'{"name": "Ada"}', headers=headers)

        assert (answer.status_code, answer.json()["code"]) == (415, "json_required"), (content_type, answer.text)
    assert rows(sql) == before


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON", "application/ld+json"])
async def test_json_by_any_of_its_names_is_read(
    client: Client, make_user: Callable[[], User], content_type: str
) -> None:
    answer = await client.post(
        "/v1/reflections", content=b'{"name": "Ada"}', headers={**make_user().headers, "content-type": content_type}
    )

    assert answer.status_code == 201, answer.text


async def test_a_route_that_needs_its_body_still_says_it_is_missing(
    client: Client, make_user: Callable[[], User]
) -> None:
    answer = await client.post("/v1/reflections", headers=make_user().headers)

    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "validation_failed"


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("POST", "/api/v1/voice-samples"),
        ("POST", "/v1/reflections/{reflection_id:uuid}/voice/clone"),
        ("POST", "/api/v1/provenance/check"),
        ("POST", "/api/v1/consents/{consent_id:uuid}/recording"),
        ("GET", "/v1/reflections"),
    ],
)
async def test_a_body_announced_over_any_routes_limit_is_refused_unread(
    client: Client, make_user: Callable[[], User], method: str, route: str
) -> None:
    """The upload routes by their own limits (a sample's 25 MiB, a recording's 12 MiB), the rest by the JSON limit."""
    user = make_user()
    headers = {
        "content-type": "multipart/form-data; boundary=b",
        "content-length": str(60 * 1024 * 1024),
        **user.headers,
    }

    status, _, body = await call(client, method, _concrete(route), headers, Received(forbidden=True))

    assert status == 413
    assert code_of(body) in {"payload_too_large", "body_too_large"}
