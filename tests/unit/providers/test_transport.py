"""The providers' client over aiohttp (backend.providers.transport), against a server on loopback that speaks
HTTP/1.1 by hand: a request reaches the server as httpx's own transport sends it, an answer's body streams as it
comes, a connection is pooled after a whole answer and closed after a partial one, and every way a request can fail
is the httpx error that says whether it was sent."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from backend.providers.errors import TransientProviderError
from backend.providers.http import ProviderHttp, RetryPolicy, create_http_client
from backend.providers.transport import AiohttpTransport
from backend.tls import verifying_context
from standins.postgres import free_port
from tests.unit.providers.test_transport_faults import Meter


@dataclass
class Seen:
    """One request as the server read it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int


Reply = Callable[[Seen, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Server:
    """What the server read, request by request, and the connections it saw end."""

    url: str
    seen: list[Seen] = field(default_factory=list)
    ended: asyncio.Queue[int] = field(default_factory=asyncio.Queue)


async def _read_request(reader: asyncio.StreamReader, connection: int) -> Seen | None:
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return None
    line, *fields = head.decode("latin-1").split("\r\n")[:-2]
    method, target, _ = line.split(" ")
    headers = {name.lower(): value.strip() for name, _, value in (f.partition(":") for f in fields)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Seen(method, target, headers, body, connection)


@asynccontextmanager
async def serving(reply: Reply) -> AsyncIterator[Server]:
    """A server on loopback that reads each request of each connection and lets ``reply`` write the answer."""
    server = Server("")
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        number = connections
        try:
            while (seen := await _read_request(reader, number)) is not None:
                server.seen.append(seen)
                await reply(seen, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            server.ended.put_nowait(number)

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    server.url = f"http://127.0.0.1:{port}"
    async with listening:
        yield server
        listening.close()


def answer(status: int, body: bytes = b"", *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} Whatever", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def in_two(first: bytes, second: bytes, between: asyncio.Event) -> Reply:
    """An answer written in two parts, the second once the test sets ``between``."""

    async def reply(seen: Seen, writer: asyncio.StreamWriter) -> None:
        writer.write(first)
        await writer.drain()
        await asyncio.wait_for(between.wait(), 10)
        writer.write(second)
        await writer.drain()

    return reply


async def ok(seen: Seen, writer: asyncio.StreamWriter) -> None:
    writer.write(answer(200, b'{"ok": true}', "Content-Type: application/json"))
    await writer.drain()


async def request_both(url: str, **kwargs: Any) -> None:
    async with create_http_client() as ours, httpx.AsyncClient(trust_env=False) as theirs:
        for client in (ours, theirs):
            response = await client.post(url, **kwargs)
            assert response.status_code == 200
            assert response.json() == {"ok": True}


@pytest.mark.parametrize(
    "body",
    [
        {"json": {"text": "Grüß dich", "model_id": "eleven_flash_v2_5"}, "params": {"output_format": "pcm_24000"}},
        {"files": {"files": ("a.wav", b"RIFF" + bytes(range(256)), "audio/wav")}, "data": {"name": "Ada"}},
        {"content": b"\x00\x01raw"},
    ],
    ids=["json", "multipart", "bytes"],
)
async def test_a_request_reaches_the_server_as_httpxs_own_transport_sends_it(body: dict[str, Any]) -> None:
    async with serving(ok) as server:
        await request_both(f"{server.url}/v1/text-to-speech/v", headers={"xi-api-key": "k"}, **body)
    ours, theirs = server.seen
    assert (ours.method, ours.target) == (theirs.method, theirs.target)
    assert ours.headers["xi-api-key"] == "k"
    # Each client draws its own multipart boundary: the two match with it put back.
    _, _, boundary = theirs.headers.get("content-type", "").partition("boundary=")
    _, _, mine = ours.headers.get("content-type", "").partition("boundary=")
    assert {**ours.headers, "content-type": ours.headers.get("content-type", "").replace(mine, boundary)} == {
        **theirs.headers,
        "content-type": theirs.headers.get("content-type", ""),
    }
    assert ours.body.replace(mine.encode(), boundary.encode()) == theirs.body


async def test_a_body_streams_as_it_comes_and_a_whole_answer_leaves_its_connection_for_the_next() -> None:
    second_part = asyncio.Event()
    chunked = in_two(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n", b"6\r\nsecond\r\n0\r\n\r\n", second_part
    )

    async with serving(chunked) as server, create_http_client() as client:
        for _ in range(2):
            second_part.clear()
            async with client.stream("POST", f"{server.url}/stream", json={}) as response:
                parts = response.aiter_bytes()
                assert await anext(parts) == b"first"  # while the server waits for this test
                second_part.set()
                assert b"".join([part async for part in parts]) == b"second"
        assert [seen.connection for seen in server.seen] == [1, 1]


async def test_an_answer_left_before_its_end_closes_its_connection() -> None:
    async def endless(seen: Seen, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n")
        await writer.drain()
        while True:  # until the client goes away
            await asyncio.sleep(0.01)
            writer.write(b"4\r\npart\r\n")
            await writer.drain()

    async with serving(endless) as server, create_http_client() as client:
        async with client.stream("POST", f"{server.url}/stream") as response:
            assert await anext(response.aiter_bytes()) == b"part"
        assert await asyncio.wait_for(server.ended.get(), 10) == 1


async def test_a_compressed_answer_is_decoded_once() -> None:
    text = json.dumps({"words": ["hello"] * 200}).encode()

    async def gzipped(seen: Seen, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(200, gzip.compress(text), "Content-Encoding: gzip", "Content-Type: application/json"))
        await writer.drain()

    async with serving(gzipped) as server, create_http_client() as client:
        response = await client.get(f"{server.url}/")
    assert response.content == text


async def test_a_redirect_is_answered_not_followed() -> None:
    async def moved(seen: Seen, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(302, b"", "Location: http://127.0.0.1:1/elsewhere"))
        await writer.drain()

    async with serving(moved) as server, create_http_client() as client:
        response = await client.post(f"{server.url}/v1/voices/add", headers={"xi-api-key": "secret"})
    assert response.status_code == 302
    assert len(server.seen) == 1


def _client(**timeouts: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(**timeouts),
        transport=AiohttpTransport(verify=verifying_context(), connections=1),
    )


async def test_nobody_listening_is_a_connect_error() -> None:
    async with create_http_client() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port()}/")


async def never(seen: Seen, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


async def test_no_answer_in_time_is_a_read_timeout() -> None:
    async with serving(never) as server, _client(connect=5, read=0.2, write=0.2, pool=5) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{server.url}/")
    assert time.monotonic() - started < 5


async def test_a_body_that_stalls_is_a_read_timeout() -> None:
    async def stalls(seen: Seen, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(30)

    async with (
        serving(stalls) as server,
        _client(connect=5, read=0.2, write=5, pool=5) as client,
        client.stream("GET", f"{server.url}/") as response,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await response.aread()


async def test_a_connection_lost_midway_is_a_transport_error() -> None:
    async def cut(seen: Seen, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        await writer.drain()
        writer.transport.abort()

    async with (
        serving(cut) as server,
        create_http_client() as client,
        client.stream("GET", f"{server.url}/") as response,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            await response.aread()


async def test_a_request_that_waits_too_long_for_a_connection_is_not_sent() -> None:
    release = asyncio.Event()
    held = in_two(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", b"x", release)

    async with (
        serving(held) as server,
        _client(connect=0.1, read=5, write=5, pool=0.1) as client,
        client.stream("GET", f"{server.url}/first"),
    ):
        with pytest.raises(httpx.ConnectTimeout):
            await client.get(f"{server.url}/second")
        release.set()
    assert [seen.target for seen in server.seen] == ["/first"]


async def test_a_provider_nobody_answers_for_is_unreachable_and_its_sends_are_told_unsent() -> None:
    meter = Meter()
    async with create_http_client() as client:
        http = ProviderHttp(
            "p",
            client,
            f"http://127.0.0.1:{free_port()}",
            {},
            lambda response: TransientProviderError("p", "busy"),
            policy=RetryPolicy(max_attempts=2, base_delay_s=0.0),
        )
        with pytest.raises(TransientProviderError, match="could not be reached"):
            async with http.streaming("POST", "/tts", json={}, meter=meter):
                pass
    assert (meter.sent, meter.unsent) == (2, 2)
