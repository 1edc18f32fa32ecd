"""A Host header that is not a host with an optional port is a 400 `invalid_host` problem on every kind
of route (the API's with or without a token, the Storage stand-in's, the demo page, the docs, none at
all), and nothing is logged; hosts a client really sends pass."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from litestar.testing import AsyncTestClient

from backend.fields import valid_host
from tests.integration.api.conftest import User

Client = AsyncTestClient  # type: ignore[type-arg]
ROUTES = [
    ("GET", "/healthz"),
    ("GET", "/v1/reflections"),
    ("POST", "/v1/reflections"),
    ("GET", "/storage/v1/object/voice-samples/someone/x/original"),
    ("PUT", "/storage/v1/object/upload/sign/voice-samples/someone/x/original?token=t"),
    ("GET", "/"),
    ("GET", "/schema"),
    ("GET", "/schema/openapi.json"),
    ("POST", "/dev/session"),
    ("GET", "/no/such/route"),
]
BAD_HOSTS = [
    "127.0.0.1:80 evil",
    "example.com:http",
    "example.com:99999",
    "[::1",
    "[not-an-ip]:80",
    "a b",
    "a" * 9000,
    f"{'a' * 64}.example.com",
    ".".join(["a" * 63] * 4) + ":8000",  # 255 characters of name: more than DNS allows
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_an_invalid_host_is_a_400_on_every_route_and_logs_nothing(
    client: Client, make_user: Callable[[], User], caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    caplog.set_level(logging.DEBUG)
    user = make_user()  # a valid token changes nothing: the Host is checked before anything else

    for host in BAD_HOSTS:
        for headers in ({"host": host}, {"host": host, **user.headers}):
            response = await client.request(method, path, headers=headers, json={"name": "r"})

            assert response.status_code == 400, (host, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert (problem["code"], problem["instance"]) == ("invalid_host", path.partition("?")[0])
    assert [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8000",
        "localhost",
        "api.example.com",
        "api.example.com:",
        "[::1]:8000",
        "[2001:db8::1]",
        "xn--bcher-kva.example",
        f"{'a' * 63}.example.com",
        ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61]) + ":65535",  # the longest DNS name, and a port
    ],
)
def test_hosts_clients_send_are_valid(host: str) -> None:
    assert valid_host([(b"host", host.encode())])


def test_no_host_is_valid_and_two_are_not() -> None:
    assert valid_host([])
    assert not valid_host([(b"host", b"a.example"), (b"host", b"b.example")])
