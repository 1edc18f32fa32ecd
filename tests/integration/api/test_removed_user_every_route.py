"""A removed user's token, on every route of the OpenAPI document (issue 77).

A signed, unexpired token outlives its user by up to its expiry. Walking the document: every route that takes a
user's token answers such a token 401 `unauthorized`, whatever the body (before, `POST /api/v1/provenance/check`
answered 200, the deletes of the user's own former rows 404, and 15 JSON routes 400 about the body); an upload route
refuses it before it reads a byte of the upload, and once the database has said the account is gone, every route
refuses the token before any work. And a removed user's requests leave nothing behind for anyone else: on a pool of
one connection, another user's same request, after theirs, still answers (before, a removed user's request left the
connection failing the next one with `prepared statement "_pg3_N" does not exist`: a 500)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.settings import settings_from_env
from devkit.db import Conn, create_user
from fakes.audio import tone_wav
from standins.dev_tokens import mint_user_token
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.integration.api.conftest import JWT_SECRET, User
from tests.integration.api.test_hostile_bodies import _concrete

Client = AsyncTestClient  # type: ignore[type-arg]
WAV = tone_wav(4.0, 24000)
JSON = "application/json"
MULTIPART = "multipart/form-data"
#: Turns of another user's request and a removed user's on the same route: past the sixth run of a statement, the
#: one psycopg prepares it on.
TURNS = 4


class Operation:
    """A route of the document that takes a user's token, and the request its first example makes."""

    def __init__(self, method: str, path: str, operation: dict[str, Any]) -> None:
        self.method = method.upper()
        self.path = path
        content = operation.get("requestBody", {}).get("content", {})
        self.kind = next(iter(content), None)
        examples = content.get(self.kind, {}).get("examples", {}) if self.kind else {}
        self.example: dict[str, Any] = next(iter(examples.values()))["value"] if examples else {}

    def __repr__(self) -> str:
        return f"{self.method} {self.path}"

    def request(self, headers: dict[str, str]) -> dict[str, Any]:
        """The keyword arguments of the client's `request` for the example (a fresh id for each path parameter)."""
        args: dict[str, Any] = {"method": self.method, "url": _concrete(_typed(self.path)), "headers": headers}
        if self.kind == JSON:
            args["json"] = self.example
        elif self.kind == MULTIPART:
            fields = {name: value for name, value in self.example.items() if name != "file"}
            args["data"] = {
                name: str(value).lower() if isinstance(value, bool) else str(value) for name, value in fields.items()
            }
            args["files"] = {"file": ("me.wav", WAV, "audio/wav")}
        return args


def _typed(path: str) -> str:
    """The document's `{name}` parameters as the route table's `{name:uuid}`, which `_concrete` fills."""
    return path.replace("}", ":uuid}")


def _operations(app: Litestar) -> list[Operation]:
    document = app.openapi_schema.to_schema()
    return [
        Operation(method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and operation.get("security")
    ]


def _app(db_dsn: str, tmp_path: Path, **env: str) -> Litestar:
    settings = settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path), **env})
    return create_app(with_auth_keys(settings, {"SUPABASE_JWT_SECRET": JWT_SECRET}), db_dsn, embedded=EMBEDDED)


@pytest.fixture
async def one_connection(db_dsn: str, tmp_path: Path) -> AsyncIterator[Client]:
    """The app on a pool of one connection: every unit of work runs on the one a removed user's request left."""
    app = _app(db_dsn, tmp_path, VOICEGATE_DB_POOL_MIN="1", VOICEGATE_DB_POOL_MAX="1")
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


def _user(sql: Conn) -> User:
    user_id = create_user(sql)
    return User(user_id, mint_user_token(JWT_SECRET, user_id))


def _removed(sql: Conn) -> User:
    """A user whose auth.users row is deleted (as Supabase Auth's admin deleteUser does), with a valid token."""
    user = _user(sql)
    sql.execute("delete from auth.users where id = %s", (user.id,))
    return user


def test_the_document_is_walked(client: Client) -> None:
    """The routes the issue named are among those walked, and so will any new one be."""
    walked = {repr(op) for op in _operations(client.app)}
    assert {
        "POST /api/v1/provenance/check",
        "DELETE /api/voices/{voice_id}",
        "DELETE /v1/webhooks/{endpoint_id}",
        "POST /api/v1/clone",
        "POST /api/v1/voice-samples",
    } <= walked
    assert len(walked) >= 45


async def test_a_removed_users_token_is_a_401_on_every_route_whatever_the_body(client: Client, sql: Conn) -> None:
    wrong = []
    for operation in _operations(client.app):
        # A fresh removed user each time: none of them has been refused before, by the database or the entry check.
        example = await client.request(**operation.request(_removed(sql).headers))
        headers = _removed(sql).headers
        empty = await client.request(operation.method, _concrete(_typed(operation.path)), headers=headers)
        junk_headers = {**_removed(sql).headers, "content-type": JSON}
        junk = await client.request(
            operation.method, _concrete(_typed(operation.path)), content=b'{"name": ', headers=junk_headers
        )
        for body, answer in (("example", example), ("none", empty), ("junk", junk)):
            problem = answer.json() if answer.headers.get("content-type") == "application/problem+json" else {}
            if (answer.status_code, problem.get("code")) != (401, "unauthorized"):
                wrong.append((repr(operation), body, answer.status_code, problem.get("detail")))
    assert wrong == []


async def _asgi(app: Litestar, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, int]:
    """The status `app` answers with, and how many times it asked for the request's body."""
    asked, status = 0, 0

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    fields = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode()), *fields],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return status, asked


async def test_an_upload_is_refused_before_its_body_is_read_and_any_route_once_the_account_is_known_gone(
    client: Client, sql: Conn
) -> None:
    user = _removed(sql)
    upload = {**user.headers, "content-type": "multipart/form-data; boundary=x"}
    assert await _asgi(client.app, "POST", "/api/v1/voice-samples", upload, b"--x\r\n" * 1000) == (401, 0)
    # The database has said this account is gone: a JSON route refuses it without reading the body, and a read
    # without a round trip to the database.
    json_body = {**user.headers, "content-type": JSON}
    assert await _asgi(client.app, "POST", "/v1/reflections", json_body, b'{"name": "Mine"}') == (401, 0)
    assert await _asgi(client.app, "GET", "/v1/reflections", user.headers, b"") == (401, 0)


async def test_another_users_request_answers_on_the_connection_a_removed_users_left(
    one_connection: Client, sql: Conn
) -> None:
    live = _user(sql)
    failed = []
    refused = []
    for operation in _operations(one_connection.app):
        answers = []
        for _ in range(TURNS):
            answers.append(await one_connection.request(**operation.request(live.headers)))
            removed = await one_connection.request(**operation.request(_removed(sql).headers))
            if removed.status_code != 401:
                refused.append((repr(operation), removed.status_code))
        answers.append(await one_connection.request(**operation.request(live.headers)))
        failed += [(repr(operation), a.status_code, a.text[:200]) for a in answers if a.status_code >= 500]
    assert failed == []
    assert refused == []
