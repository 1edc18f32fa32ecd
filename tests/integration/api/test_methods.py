"""HEAD wherever GET answers, and OPTIONS naming every method of a path, on every route of the app (found in its
route table). On 360a82a HEAD answered 405 on every route, `/readyz` included, and OPTIONS on `/v1/reflections`
named POST but not GET."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import pytest
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from tests.integration.api.conftest import User
from tests.integration.api.test_hostile_bodies import _app, _concrete

Client = AsyncTestClient  # type: ignore[type-arg]


def _methods_by_path() -> dict[str, set[str]]:
    """Every path of the app, and the methods its handlers declare (OPTIONS aside)."""
    methods: dict[str, set[str]] = defaultdict(set)
    for route in _app().routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                methods[route.path] |= set(handler.http_methods) - {"OPTIONS"}
    return {path: found for path, found in methods.items() if found}


METHODS = _methods_by_path()
GET_PATHS = sorted(path for path, methods in METHODS.items() if "GET" in methods)


def test_the_route_table_is_read() -> None:
    assert {"/healthz", "/readyz", "/v1/reflections", "/api/voices/{voice_id:uuid}"} <= set(GET_PATHS)
    assert METHODS["/v1/reflections"] == {"GET", "POST"}


async def test_head_answers_as_get_does_without_its_body(client: Client, make_user: Callable[[], User]) -> None:
    user = make_user()
    differ = []
    for path in GET_PATHS:
        concrete = _concrete(path)
        got = await client.get(concrete, headers=user.headers)
        head = await client.head(concrete, headers=user.headers)

        kind = "content-type"
        same = (head.status_code, head.headers.get(kind)) == (got.status_code, got.headers.get(kind))
        if not same or head.content != b"" or head.status_code == 405:
            differ.append((path, got.status_code, head.status_code, len(head.content)))

    assert differ == []


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/schema/openapi.json"])
async def test_head_says_how_long_the_body_would_be(client: Client, path: str) -> None:
    got = await client.get(path)
    head = await client.head(path)

    assert head.status_code == got.status_code == 200
    assert head.headers["content-length"] == str(len(got.content)) != "0"
    assert head.content == b""


async def test_options_names_every_method_of_every_path(client: Client) -> None:
    wrong = []
    for path, methods in sorted(METHODS.items()):
        expected = methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())
        answer = await client.options(_concrete(path))
        allowed = {method.strip() for method in answer.headers.get("allow", "").split(",") if method.strip()}
        if (answer.status_code, allowed) != (204, expected):
            wrong.append((path, answer.status_code, sorted(allowed), sorted(expected)))

    assert wrong == []


async def test_options_on_no_route_is_a_404(client: Client) -> None:
    answer = await client.options("/no/such/route")

    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
