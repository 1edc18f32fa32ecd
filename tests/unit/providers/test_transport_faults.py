"""The providers' transport over aiohttp against httpx's own, fault by fault (a reviewer's attack on the first
version: each failed over aiohttp then, each passes over httpx's own): a pooled connection the provider closed while
the loop was busy is not reused, answers with long or many headers are read, a request still waiting for a
connection is not sent, an idempotent request is sent once per attempt, and a client closed under a waiting stream
says it was never sent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from backend.providers.errors import ProviderError, TransientProviderError
from backend.providers.http import ProviderHttp, RetryPolicy, create_http_client
from backend.providers.transport import AiohttpTransport
from backend.tls import verifying_context
from tests.unit.test_tls import self_signed

#: No wait here is unbounded.
BOUND = 5.0
#: Files held open so that the next sockets are numbered past select()'s 1,024.
PADDED = 1100
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, list[bytes]], Awaitable[None]]


@contextlib.contextmanager
def threaded_server(handler: Handler) -> Iterator[tuple[str, list[bytes]]]:
    """A raw HTTP/1.1 server in its own thread and loop (so that a busy client loop does not stall it)."""
    loop = asyncio.new_event_loop()
    heads: list[bytes] = []
    started = threading.Event()
    box: dict[str, object] = {}

    writers: list[asyncio.StreamWriter] = []
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            await handler(reader, writer, heads)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Each connection is known from its first callback: a handler task cancelled before its first step never
        # runs its body, and would leave its connection unclosed.
        writers.append(writer)
        handlers.add(loop.create_task(handle(reader, writer)))

    def run() -> None:
        asyncio.set_event_loop(loop)
        box["server"] = loop.run_until_complete(asyncio.start_server(accept, "127.0.0.1", 0))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait()
    server = box["server"]
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield f"http://127.0.0.1:{port}", heads
    finally:

        async def stop() -> None:
            async with asyncio.timeout(BOUND):
                # Accepting stops first, and the accepts already under way finish while the server is open: one
                # started after its close fails an assertion in asyncio (3.11) and leaves its socket unclosed.
                for sock in server.sockets:  # type: ignore[attr-defined]
                    loop.remove_reader(sock.fileno())
                accepting = asyncio.all_tasks() - handlers - {asyncio.current_task()}
                await asyncio.gather(*accepting, return_exceptions=True)
                server.close()  # type: ignore[attr-defined]
                # A close waits for unsent bytes to drain, which a client that stopped reading never lets happen:
                # each connection is aborted, and waited for until its socket is closed.
                for task in handlers:
                    task.cancel()
                for writer in writers:
                    writer.transport.abort()
                await asyncio.gather(*handlers, return_exceptions=True)
                for writer in writers:
                    with contextlib.suppress(ConnectionError):
                        await writer.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return head


def _http(client: httpx.AsyncClient, url: str, attempts: int = 2) -> ProviderHttp:
    return ProviderHttp(
        "test",
        client,
        url,
        {},
        lambda r: TransientProviderError("test", "status"),
        policy=RetryPolicy(max_attempts=attempts, base_delay_s=0.0, max_delay_s=0.0),
    )


class Meter:
    """A meter (`backend.providers.http`'s) that counts the sends it was told of and those it was told never left."""

    def __init__(self) -> None:
        self.sent = self.unsent = 0

    async def before_send(self) -> None:
        self.sent += 1

    def not_sent(self) -> None:
        self.unsent += 1


@pytest.fixture(params=["httpx", "aiohttp"])
def client(request: pytest.FixtureRequest) -> httpx.AsyncClient:
    if request.param == "aiohttp":
        return create_http_client()
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=5.0),
        follow_redirects=False,
        trust_env=False,
        verify=verifying_context(),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=50),
    )


async def test_a_pooled_connection_the_provider_closed_while_the_loop_was_busy_is_not_used(
    client: httpx.AsyncClient,
) -> None:
    """The provider closes an idle keep-alive connection while this loop is busy (CPU work, here a blocking wait for
    the close): the next create must go out on a fresh connection, not be reported as an unknown outcome (nor a
    synthesis charged twice)."""
    close_now, closed = threading.Event(), threading.Event()

    async def answers_then_closes(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, heads: list[bytes]
    ) -> None:
        head = await _read_request(reader)
        if head is None:
            return
        heads.append(head)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        if b"/warm" not in head:
            return
        await asyncio.get_running_loop().run_in_executor(None, close_now.wait, BOUND)
        writer.close()
        await writer.wait_closed()
        closed.set()

    with threaded_server(answers_then_closes) as (url, heads):
        async with client:
            http = _http(client, url)
            for _ in range(3):
                close_now.clear()
                closed.clear()
                await http.request("GET", "/warm")
                close_now.set()
                assert closed.wait(BOUND)
                meter = Meter()
                before = len(heads)
                response = await http.request("POST", "/create", idempotent=False, json={}, meter=meter)
                assert response.status_code == 200
                assert len(heads) - before == 1
                assert meter.sent - meter.unsent == 1


@pytest.mark.parametrize(
    "extra", [b"X-Big: " + b"b" * 9000 + b"\r\n", b"".join(b"X-H%d: v\r\n" % i for i in range(200))]
)
async def test_an_answer_with_a_long_or_many_header_lines_is_read(client: httpx.AsyncClient, extra: bytes) -> None:
    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, heads: list[bytes]) -> None:
        while (head := await _read_request(reader)) is not None:
            heads.append(head)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + extra + b"\r\nok")
            await writer.drain()

    with threaded_server(answers) as (url, _):
        async with client:
            assert (await _http(client, url).request("POST", "/create", idempotent=False, json={})).content == b"ok"


async def test_a_create_still_waiting_for_a_connection_is_not_sent(client: httpx.AsyncClient) -> None:
    """A call timeout whose write + read is shorter than connect + pool: the pool wait must still read as unsent."""

    async def holds(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, heads: list[bytes]) -> None:
        head = await _read_request(reader)
        heads.append(head or b"")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
        await writer.drain()
        await asyncio.sleep(5)

    with threaded_server(holds) as (url, _):
        async with client:
            held = [await client.send(client.build_request("GET", f"{url}/h"), stream=True) for _ in range(50)]
            meter = Meter()
            with pytest.raises(TransientProviderError):
                await _http(client, url, attempts=1).request(
                    "POST",
                    "/create",
                    idempotent=False,
                    json={},
                    meter=meter,
                    call_timeout=httpx.Timeout(connect=2.0, read=0.5, write=0.5, pool=3.0),
                )
            assert meter.unsent == 1
            for response in held:
                await response.aclose()


async def test_an_idempotent_request_is_sent_once_per_attempt(client: httpx.AsyncClient) -> None:
    async def acts_then_hangs_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, heads: list[bytes]
    ) -> None:
        head = await _read_request(reader)
        if head:
            heads.append(head)

    with threaded_server(acts_then_hangs_up) as (url, heads):
        async with client:
            with pytest.raises(httpx.TransportError):
                await client.delete(f"{url}/v1/voices/V")
            await asyncio.sleep(0.05)
            assert len(heads) == 1


async def test_closing_the_client_under_a_waiting_stream_is_not_sent_and_not_a_cancellation(
    client: httpx.AsyncClient,
) -> None:
    async def holds(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, heads: list[bytes]) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
        await writer.drain()
        await asyncio.sleep(5)

    with threaded_server(holds) as (url, _):
        held = [await client.send(client.build_request("GET", f"{url}/h"), stream=True) for _ in range(50)]
        meter = Meter()

        async def stream() -> None:
            async with _http(client, url, attempts=1).streaming("POST", "/tts", json={}, meter=meter):
                pass

        waiting = asyncio.create_task(stream())
        await asyncio.sleep(0.3)
        await client.aclose()
        with pytest.raises(TransientProviderError):
            await waiting
        assert meter.unsent == meter.sent
        with pytest.raises(httpx.TransportError):  # the held streams, read after close: an httpx error
            await held[0].aread()


async def test_a_pooled_connection_past_descriptor_1024_is_reused(client: httpx.AsyncClient) -> None:
    """A busy server holds more than 1,024 files (`nofile` allows 20,000): a pooled connection numbered past 1,023
    is checked and reused like any other (select() refuses such a descriptor; every reuse then failed as sent)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < PADDED + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, PADDED + 200), hard))
    padding = [os.open(os.devnull, os.O_RDONLY) for _ in range(PADDED)]
    try:

        async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, heads: list[bytes]) -> None:
            while (head := await _read_request(reader)) is not None:
                heads.append(head)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()

        with threaded_server(answers) as (url, heads):
            async with client:
                http = _http(client, url)
                for _ in range(3):
                    meter = Meter()
                    response = await http.request("POST", "/create", idempotent=False, json={}, meter=meter)
                    assert response.status_code == 200
                    assert meter.sent - meter.unsent == 1
            assert len(heads) == 3
    finally:
        for fd in padding:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("stage", ["body", "upload"])
async def test_closing_the_client_fails_a_body_being_read_and_an_upload_the_provider_stopped_reading(
    client: httpx.AsyncClient, stage: str
) -> None:
    """A shutdown while a stream's body is half read, or while an upload sits in full socket buffers: the close
    returns at once and the request fails as lost (aiohttp's own close left both waiting for ever)."""
    reached = threading.Event()

    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, heads: list[bytes]) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        if stage == "body":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
            await writer.drain()
        reached.set()
        await asyncio.sleep(BOUND * 2)

    async def call(url: str) -> None:
        if stage == "upload":
            await client.post(f"{url}/v1/voices/add", content=b"a" * 50_000_000)
            return
        async with client.stream("POST", f"{url}/tts", json={}) as response:
            async for _ in response.aiter_raw():
                pass

    with threaded_server(stalls) as (url, _):
        under_way = asyncio.create_task(call(url))
        assert await asyncio.to_thread(reached.wait, BOUND)
        if stage == "body":
            await asyncio.sleep(0.1)  # the head and the first bytes read: nothing to wait on, the body stalls
        async with asyncio.timeout(BOUND):
            await client.aclose()
            with pytest.raises(httpx.ReadError):
                await under_way


@pytest.mark.parametrize("kind", ["httpx", "aiohttp"])
async def test_closing_the_client_while_its_connection_is_made_is_not_sent(kind: str, tmp_path: Path) -> None:
    """A shutdown during a TLS handshake, which the provider completes after it: the request is charged if and only
    if it reached the provider (aiohttp sends nothing then, and its "Connector is closed" read as a lost answer;
    httpx's own sends it on the connection made)."""
    cert, key = self_signed(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    accepted, client_closed = threading.Event(), threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    heads: list[bytes] = []

    def handshakes_late() -> None:
        raw, _ = listener.accept()
        accepted.set()
        client_closed.wait(BOUND)
        with contextlib.suppress(OSError), served.wrap_socket(raw, server_side=True) as tls:
            heads.append(tls.recv(65536))

    thread = threading.Thread(target=handshakes_late, daemon=True)
    thread.start()
    if kind == "aiohttp":
        client = httpx.AsyncClient(transport=AiohttpTransport(verify=trusting, connections=5))
    else:
        client = httpx.AsyncClient(verify=trusting)
    meter = Meter()
    http = _http(client, f"https://127.0.0.1:{listener.getsockname()[1]}", attempts=1)
    with listener:
        making = asyncio.create_task(http.request("POST", "/create", idempotent=False, json={}, meter=meter))
        assert await asyncio.to_thread(accepted.wait, BOUND)
        async with asyncio.timeout(BOUND):
            await client.aclose()
            client_closed.set()
            with pytest.raises(ProviderError):
                await making
        await asyncio.to_thread(thread.join, BOUND)
    reached = [head for head in heads if head.startswith(b"POST /create ")]
    assert meter.sent == 1
    assert meter.sent - meter.unsent == len(reached)
    if kind == "aiohttp":
        assert not reached


async def test_an_upload_over_a_mebibyte_arrives_whole_and_without_a_warning(client: httpx.AsyncClient) -> None:
    """A voice sample of 3 MiB (providers take up to 10): sent with its length, all of it (aiohttp warns of bytes
    bodies over 1 MiB, which this suite's warnings-as-errors would raise inside the transport)."""
    sizes: list[int] = []

    async def counts(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, heads: list[bytes]) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        sizes.append(len(await reader.readexactly(length)))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    sample = os.urandom(3 << 20)
    with threaded_server(counts) as (url, _):
        async with client:
            response = await _http(client, url, attempts=1).request(
                "POST", "/v1/voices/add", idempotent=False, files={"files": ("s.wav", sample, "audio/wav")}
            )
    assert response.status_code == 200
    assert len(sizes) == 1
    assert sizes[0] > len(sample)
