"""The ASGI base of every fake: routing, request recording, latency and fault injection."""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import json
import random
import re
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

FaultKind = Literal["status", "timeout", "malformed", "lost", "dropped"]


@dataclass(frozen=True)
class FormPart:
    """One multipart/form-data part."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode()


@dataclass(frozen=True)
class RecordedRequest:
    """Everything a fake received, for assertions about the exact request shape."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> list[FormPart]:
        """Parse a multipart/form-data body (repeated names stay separate parts)."""
        return parse_multipart(self.headers.get("content-type", ""), self.body)

    def form_fields(self) -> dict[str, list[FormPart]]:
        fields: dict[str, list[FormPart]] = {}
        for part in self.form():
            fields.setdefault(part.name, []).append(part)
        return fields


def parse_multipart(content_type: str, body: bytes) -> list[FormPart]:
    """Parse multipart/form-data with the standard library's MIME parser."""
    if not content_type.startswith("multipart/form-data"):
        return []
    raw = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts: list[FormPart] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        parts.append(
            FormPart(
                name=name,
                data=payload if isinstance(payload, bytes) else b"",
                filename=part.get_filename(),
                content_type=part.get_content_type() if part.get("content-type") else None,
            )
        )
    return parts


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Streamed:
    """A 2xx whose body goes out chunk by chunk (chunked transfer), as a streaming API sends audio while it
    is made: a list goes out one chunk every ``stream_interval_s``; a generator paces itself (each chunk goes
    out as it is made)."""

    status: int
    chunks: list[bytes] | AsyncGenerator[bytes, None]
    headers: list[tuple[str, str]] = field(default_factory=list)


def chunked(data: bytes, size: int) -> list[bytes]:
    """``data`` in pieces of ``size`` bytes (the last one shorter)."""
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, json.dumps(payload).encode(), [("content-type", "application/json"), *(headers or [])])


@dataclass(frozen=True)
class Fault:
    """One injected failure.

    ``status``: answer with that HTTP status and the provider's error envelope (``retry_after`` sets
    the header); ``timeout``: never answer (hold until the client gives up); ``malformed``: 200 with
    truncated JSON; ``lost``: do the work, then never answer ("created but the response was lost");
    ``dropped``: do the work, then close the connection under the answer's first line (the answer lost, and the
    client told so at once rather than at its timeout).
    ``method``, ``path_prefix`` and ``when`` restrict which requests the fault applies to.
    """

    kind: FaultKind
    status: int = 503
    retry_after: str | None = None
    method: str | None = None
    path_prefix: str | None = None
    when: Callable[[RecordedRequest], bool] | None = None

    def matches(self, request: RecordedRequest) -> bool:
        if self.method is not None and request.method != self.method:
            return False
        if self.path_prefix is not None and not request.path.startswith(self.path_prefix):
            return False
        return self.when is None or self.when(request)


class Faults:
    """Deterministic fault switches: a queue of "next N matching requests" plus a seeded random rate."""

    def __init__(self, seed: int = 0) -> None:
        self._queue: list[Fault] = []
        self._lock = threading.Lock()
        self.rate = 0.0
        self.rate_fault = Fault("status", 503)
        #: Faults drawn together (`fail_at_rates`): each with its rate.
        self.mixed: list[tuple[float, Fault]] = []
        self.latency_s = 0.0
        self._rng = random.Random(seed)  # noqa: S311 - seeded so fault patterns repeat

    def fail_next(self, fault: Fault, times: int = 1) -> None:
        with self._lock:
            self._queue.extend([fault] * times)

    def fail_at_rate(self, rate: float, fault: Fault, seed: int = 0) -> None:
        self.rate, self.rate_fault, self._rng = rate, fault, random.Random(seed)  # noqa: S311 - seeded
        self.mixed = []

    def fail_at_rates(self, rates: list[tuple[float, Fault]], seed: int = 0) -> None:
        """Each matching request meets one of several faults at random, each at its own rate (their sum at most
        1): one draw a request, so the faults never add up on one request."""
        if sum(rate for rate, _ in rates) > 1:
            raise ValueError("the rates add up to more than every request")
        self.rate, self.mixed, self._rng = 0.0, list(rates), random.Random(seed)  # noqa: S311 - seeded

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
        self.rate = 0.0
        self.mixed = []
        self.latency_s = 0.0

    def take(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._queue):
                if fault.matches(request):
                    return self._queue.pop(index)
        if self.rate and self.rate_fault.matches(request) and self._rng.random() < self.rate:
            return self.rate_fault
        if self.mixed:
            draw = self._rng.random()
            for rate, fault in self.mixed:
                if draw < rate:
                    return fault if fault.matches(request) else None
                draw -= rate
        return None


class ConnectionDropped(Exception):
    """A `dropped` fault: the fake's server closes the connection under the answer it began."""


@dataclass
class StreamRecord:
    """A stream the fake sent to its end: the request, and when it began and each chunk went out."""

    request: RecordedRequest
    started: float
    chunk_times: list[float] = field(default_factory=list)


Handler = Callable[["RecordedRequest", dict[str, str]], Awaitable[Response | Streamed]]


class FakeProvider:
    """ASGI app base: subclasses register routes and describe their error envelope.

    A streamed answer (``Streamed``) sends a chunk every ``stream_interval_s``; a client that goes away
    before its last chunk is recorded in ``cancelled`` (and the fake stops generating), and a stream sent
    to its end in ``streamed``, each with the times its chunks went out.

    ``plan_concurrency`` holds the account to a plan's concurrent requests, as ElevenLabs and Cartesia do: a
    request that arrives while that many are in flight (streams included) is answered 429 and recorded in
    ``over_plan``; ``most_in_flight`` is the most requests it has had in flight at once.
    """

    def __init__(self, seed: int = 0) -> None:
        self.requests: list[RecordedRequest] = []
        self.faults = Faults(seed)
        self.stream_interval_s = 0.01
        self.cancelled: list[RecordedRequest] = []
        self.streamed: list[StreamRecord] = []
        self.plan_concurrency: int | None = None
        self.over_plan: list[RecordedRequest] = []
        self.most_in_flight = 0
        self._in_flight = 0
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    def requests_to(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def error_response(self, status: int, retry_after: str | None) -> Response:
        """The provider's envelope for an injected error status."""
        raise NotImplementedError

    def fault_response(self, request: RecordedRequest, status: int, retry_after: str | None) -> Response:
        """The answer to ``request`` for an injected error status: ``error_response``, unless the provider frames
        its errors by what the request asked for."""
        return self.error_response(status, retry_after)

    def malformed_response(self) -> Response:
        return Response(200, b'{"output": {"voice": ', [("content-type", "application/json")])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=parse_qs(scope["query_string"].decode(), keep_blank_values=True),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
        )
        self.requests.append(request)
        if self.plan_concurrency is not None and self._in_flight >= self.plan_concurrency:
            self.over_plan.append(request)
            await _send(send, self.fault_response(request, 429, None))
            return
        self._in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self._in_flight)
        try:
            await self._answer_in_plan(request, receive, send)
        finally:
            self._in_flight -= 1

    async def _answer_in_plan(self, request: RecordedRequest, receive: Receive, send: Send) -> None:
        """The answer to a request the plan let in: its injected fault, else its route's."""
        fault = self.faults.take(request)
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)
        if fault is not None and fault.kind == "timeout":
            await _wait_for_disconnect(receive)
            return
        if fault is not None and fault.kind == "status":
            await _send(send, self.fault_response(request, fault.status, fault.retry_after))
            return
        if fault is not None and fault.kind == "malformed":
            await _send(send, self.malformed_response())
            return
        response = await self._dispatch(request)
        if fault is not None and fault.kind == "lost":
            await _wait_for_disconnect(receive)
            return
        if fault is not None and fault.kind == "dropped":
            # The server closes a connection whose app fails after the answer has begun: the client reads a status
            # line and then the connection's end, never a body.
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]})
            raise ConnectionDropped(request.path)
        if isinstance(response, Streamed):
            await self._send_streamed(request, response, receive, send)
            return
        await _send(send, response)

    async def _send_streamed(self, request: RecordedRequest, response: Streamed, receive: Receive, send: Send) -> None:
        """Send the chunks as they come until the last, or until the client disconnects."""
        headers = [(k.encode(), v.encode()) for k, v in response.headers]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        gone = asyncio.Event()

        async def watch() -> None:
            await _wait_for_disconnect(receive)
            gone.set()

        watcher = asyncio.create_task(watch())
        record = StreamRecord(request=request, started=time.monotonic())
        chunks = self._paced(response.chunks, gone) if isinstance(response.chunks, list) else response.chunks
        try:
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    if gone.is_set():
                        self.cancelled.append(request)
                        return
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    record.chunk_times.append(time.monotonic())
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            self.streamed.append(record)
        finally:
            watcher.cancel()

    async def _paced(self, chunks: list[bytes], gone: asyncio.Event) -> AsyncGenerator[bytes, None]:
        """The chunks one ``stream_interval_s`` apart, or at once when the client has gone."""
        for chunk in chunks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gone.wait(), self.stream_interval_s)
            yield chunk

    async def _dispatch(self, request: RecordedRequest) -> Response | Streamed:
        path_matched = False
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            path_matched = True
            if method == request.method:
                return await handler(request, match.groupdict())
        return self.not_found_response(405 if path_matched else 404)

    def not_found_response(self, status: int) -> Response:
        return json_response(status, {"detail": "Not Found" if status == 404 else "Method Not Allowed"})


async def _wait_for_disconnect(receive: Receive) -> None:
    """Hold the request open until the client closes the connection (its timeout fired)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send(send: Send, response: Response) -> None:
    headers = [(k.encode(), v.encode()) for k, v in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
