"""No body reaches a 500 (issue 45): JSON nested 10,000 deep and bytes that are not UTF-8 crashed the decoder
(RecursionError, UnicodeDecodeError) on every route that reads JSON. Every such route, found in the app's route
table so that a new one is covered without a line here, answers them 400 `invalid_json` naming the problem,
before anything is written; and no route of the app, the Storage stand-in's included, answers them 500."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.http.pipeline.problem import EMPTY_BODY
from backend.json_body import MAX_DEPTH
from backend.settings import settings_from_env
from devkit.db import Conn
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.integration.api.conftest import User
from tests.integration.api.test_nul_characters import rows

Client = AsyncTestClient  # type: ignore[type-arg]
JSON = {"content-type": "application/json"}
TOO_DEEP = f"the body nests objects and arrays more than {MAX_DEPTH} deep"
#: Each hostile body, and the `detail` a route that reads JSON answers it with.
HOSTILE: dict[str, tuple[bytes, str]] = {
    "10,000 deep": (b'{"name": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", TOO_DEEP),
    "10,000 deep, unclosed": (b"[" * 10_000, TOO_DEEP),
    f"{MAX_DEPTH + 1} deep": (b'{"name": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}", TOO_DEEP),
    "invalid UTF-8": (b'{"name": "Ada \xff"}', "the body is not UTF-8 text (byte 14 is not part of a character)"),
    "UTF-8 cut short": (b'{"name": "Zo\xc3"}', "the body is not UTF-8 text (byte 12 is not part of a character)"),
    "malformed": (b'{"name": "Ada"', "the body is not valid JSON: Input data was truncated"),
}


def _app() -> Litestar:
    """The app as `voicegate up` builds it (embedded: with the Storage stand-in), for its route table."""
    settings = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": "/nonexistent"}), {"SUPABASE_JWT_SECRET": "s" * 40}
    )
    return create_app(settings, "postgresql://nobody@127.0.0.1:1/none", embedded=EMBEDDED)


_PARAMETER = re.compile(r"\{(\w+):(\w+)\}")
_VALUES = {"uuid": lambda: str(uuid.uuid4()), "str": lambda: "x", "path": lambda: "x/y.wav", "int": lambda: "1"}


def _concrete(path: str) -> str:
    """The route's path with a value for each parameter (a fresh UUID for an id)."""
    return _PARAMETER.sub(lambda m: _VALUES[m[2]](), path)


def _routes() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(method, path) of every route of the app, and of those among them that read a JSON body (`data`)."""
    every, json_body = [], []
    for route in _app().routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS"}):
                every.append((method, route.path))
                if "data" in handler.parsed_fn_signature.parameters:
                    json_body.append((method, route.path))
    return every, json_body


EVERY_ROUTE, JSON_ROUTES = _routes()


def test_the_route_table_is_read() -> None:
    """The routes issue 45 named are among those found (and so will any new one be)."""
    assert {("POST", "/v1/reflections"), ("POST", "/api/v1/clone"), ("POST", "/api/v1/speech")} <= set(JSON_ROUTES)
    assert len(JSON_ROUTES) >= 12
    assert len(EVERY_ROUTE) > len(JSON_ROUTES)


async def test_every_route_that_reads_json_answers_a_hostile_body_400_invalid_json(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    before = rows(sql)
    wrong: list[tuple[str, str, str, int, Any]] = []

    for method, route in JSON_ROUTES:
        for name, (body, detail) in HOSTILE.items():
            response = await client.request(method, _concrete(route), content=body, headers={**user.headers, **JSON})
            problem = _json(response)
            expected = (400, "application/problem+json", "invalid_json", detail)
            answered = (
                response.status_code,
                response.headers.get("content-type"),
                problem.get("code"),
                problem.get("detail"),
            )
            if answered != expected:
                wrong.append((method, route, name, response.status_code, problem))

    assert wrong == []
    assert rows(sql) == before


async def test_no_route_answers_a_hostile_body_with_a_server_error(
    client: Client, make_user: Callable[[], User]
) -> None:
    """The routes that read no JSON (uploads, reads, the Storage stand-in's, the docs) too."""
    user = make_user()
    failed: list[tuple[str, str, str, int]] = []

    for method, route in EVERY_ROUTE:
        for name, (body, _) in HOSTILE.items():
            response = await client.request(method, _concrete(route), content=body, headers={**user.headers, **JSON})
            if response.status_code >= 500:
                failed.append((method, route, name, response.status_code))

    assert failed == []


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def test_every_route_that_reads_json_answers_an_empty_body_in_words(
    client: Client, make_user: Callable[[], User]
) -> None:
    """No body, and an empty JSON body: 400 saying the body is empty (it said `'data'`, the repr of the key Litestar
    found missing)."""
    user = make_user()
    wrong = []
    for method, route in JSON_ROUTES:
        url = _concrete(route)
        answers = {
            "no body": await client.request(method, url, headers=user.headers),
            "empty": await client.request(method, url, content=b"", headers={**user.headers, **JSON}),
        }
        for kind, answer in answers.items():
            problem = _json(answer)
            if (answer.status_code, problem.get("code"), problem.get("detail")) != (
                400,
                "validation_failed",
                EMPTY_BODY,
            ):
                wrong.append((method, route, kind, answer.status_code, problem.get("detail")))
    assert wrong == []
