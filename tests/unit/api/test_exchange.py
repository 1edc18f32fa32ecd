"""The exchange every request passes through (`backend.http.pipeline.exchange`), and the rules beside it that need no
server: framing, a body's pace, a client that leaves, one access-log line per request with the status `/metrics`
counts; a NUL in a part's header, an empty Host, a webhook URL with outer whitespace, JSON booleans, refusals' log
level."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any, Final

import msgspec
import pytest
from litestar.types import Receive, Send

from backend import errors
from backend.fields import valid_host
from backend.http.pipeline.exchange import CLIENT_GONE, NO_ROUTE, BodyPace, Exchange
from backend.http.pipeline.json_request import _decode
from backend.http.pipeline.metrics import REQUESTS
from backend.http.pipeline.problem import problem_for
from backend.logs import REQUEST_ID, JsonFormatter
from backend.multipart import FormError, read_form
from backend.webhooks.service import EndpointRequest


def scope_of(*headers: tuple[bytes, bytes], path: str = "/v1/reflections") -> Any:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "http_version": "1.1",
        "client": ("127.0.0.1", 5000),
        "headers": list(headers),
    }


async def reading_app(scope: Any, receive: Receive, send: Send) -> None:
    """Reads the whole body, answering a voicegate error as its status (as the app's exception handler does)."""
    try:
        while (await receive()).get("more_body", False):
            pass
        status = 200
    except errors.VoicegateError as exc:
        status = exc.status
    scope["path_template"] = "/v1/reflections"
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def count_of(path: str, status: int) -> float:
    value = REQUESTS.labels("POST", path, str(status), "voicegate")._value.get()
    return float(value)


async def serve(exchange: Exchange, scope: Any, messages: list[Any]) -> list[dict[str, Any]]:
    """Run `exchange` on `scope`, its receive handing out `messages` (an Event: wait for it forever)."""
    sent: list[dict[str, Any]] = []
    queue = list(messages)

    async def receive() -> Any:
        item = queue.pop(0)
        if isinstance(item, asyncio.Event):
            await item.wait()
        return item

    async def send(message: Any) -> None:
        sent.append(message)

    await exchange(scope, receive, send)
    return sent


def exchange(grace: float = 0.05, rate: int = 1024) -> Exchange:
    return Exchange(reading_app, body_timeout=grace, body_min_rate=rate)


async def test_content_length_with_transfer_encoding_is_a_400_that_closes_the_connection() -> None:
    before = count_of(NO_ROUTE, 400)
    scope = scope_of((b"content-length", b"4"), (b"transfer-encoding", b"chunked"))

    sent = await serve(exchange(), scope, [])

    assert sent[0]["status"] == 400
    assert (b"connection", b"close") in sent[0]["headers"]
    assert b"ambiguous_framing" in sent[1]["body"]
    assert count_of(NO_ROUTE, 400) == before + 1


async def test_two_different_lengths_are_refused_as_well() -> None:
    sent = await serve(exchange(), scope_of((b"content-length", b"4"), (b"content-length", b"5")), [])
    assert sent[0]["status"] == 400


async def test_a_body_that_stops_arriving_is_a_408_that_closes_the_connection() -> None:
    scope = scope_of((b"content-length", b"100"))
    messages = [{"type": "http.request", "body": b"{", "more_body": True}, asyncio.Event()]

    sent = await serve(exchange(grace=0.05), scope, messages)

    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]


async def refusing_app(scope: Any, receive: Receive, send: Send) -> None:
    """Answers 429 before reading any of the body, as the entry check does past a user's requests in flight."""
    scope["path_template"] = "/v1/reflections"
    await send({"type": "http.response.start", "status": 429, "headers": []})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_an_early_429_keeps_the_connection_so_a_client_still_sending_reads_it() -> None:
    # Closed under a client still sending its upload, the connection is reset before the client reads the 429.
    early = Exchange(refusing_app, body_timeout=0.05, body_min_rate=1024)
    sent = await serve(early, scope_of((b"content-length", b"100")), [asyncio.Event()])
    assert sent[0]["status"] == 429
    assert (b"connection", b"close") not in sent[0]["headers"]


async def test_a_body_that_keeps_arriving_is_read_whole() -> None:
    scope = scope_of((b"content-length", b"2"))
    messages = [
        {"type": "http.request", "body": b"{", "more_body": True},
        {"type": "http.request", "body": b"}", "more_body": False},
    ]

    sent = await serve(exchange(), scope, messages)

    assert sent[0]["status"] == 200
    assert (b"connection", b"close") not in sent[0]["headers"]


async def test_a_client_that_leaves_mid_body_is_a_499_logged_once_at_info(caplog: pytest.LogCaptureFixture) -> None:
    before = count_of("/v1/reflections", CLIENT_GONE)
    scope = scope_of((b"content-length", b"100"), path="/v1/reflections")
    messages = [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]

    with caplog.at_level(logging.INFO):
        await serve(exchange(), scope, messages)

    assert count_of("/v1/reflections", CLIENT_GONE) == before + 1
    lines = [(record.name, record.levelno, record.getMessage()) for record in caplog.records]
    assert lines == [("voicegate.access", logging.INFO, '127.0.0.1:5000 - "POST /v1/reflections HTTP/1.1" 499')]


def test_the_pace_allows_a_second_per_min_rate_bytes_beyond_the_grace() -> None:
    pace = BodyPace(grace=10, min_rate=1000)
    pace.arrived, pace.waited = 5000, 12.0
    assert pace.allowance() == pytest.approx(3.0)


async def test_a_nul_in_a_parts_content_type_is_refused_naming_it() -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wa\x00v\r\n\r\nRIFF\r\n--b--\r\n"
    )

    class Reader:
        def start(self, part: Any) -> bool:
            return True

        async def file_chunk(self, chunk: bytes) -> None:
            pass

        def field(self, name: str, value: bytes) -> None:
            pass

    async def chunks() -> Any:
        yield body

    with pytest.raises(FormError, match=r"^Content-Type of the `file` part: must not contain a NUL"):
        await read_form(chunks(), "b", Reader(), max_parts=2, max_field_bytes=10)


def test_an_empty_host_is_not_a_host() -> None:
    assert not valid_host([(b"host", b"")])
    assert valid_host([(b"host", b"example.com:8000")])


@pytest.mark.parametrize(
    "url", [" https://example.com/hook", "https://example.com/hook ", "https://example.com/\thook\n"]
)
def test_a_webhook_url_with_outer_whitespace_is_refused_not_stripped(url: str) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"url": url}, EndpointRequest)
    assert msgspec.convert({"url": "https://example.com/hook"}, EndpointRequest).url == "https://example.com/hook"


class Consent(msgspec.Struct):
    consent: bool


@pytest.mark.parametrize("value", [b"1", b'"true"', b'"TRUE"', b"0"])
def test_a_boolean_field_takes_only_json_true_or_false(value: bytes) -> None:
    with pytest.raises(errors.ValidationFailed, match="consent: must be true or false"):
        _decode(b'{"consent": ' + value + b"}", Consent)
    assert _decode(b'{"consent": true}', Consent) == Consent(True)


@pytest.mark.parametrize("refusal", [errors.BacklogFull(), errors.ProviderUnavailable(), errors.BodyTooSlow()])
def test_a_refusal_is_never_logged_at_error(refusal: errors.VoicegateError, caplog: pytest.LogCaptureFixture) -> None:
    from backend.http.pipeline.problem import problem_response  # noqa: PLC0415 - beside what it is about

    class Request:
        def __init__(self) -> None:
            self.scope = {"path": "/api/v1/voice-samples", "headers": [(b"host", b"localhost")]}
            self.method = "POST"

    with caplog.at_level(logging.DEBUG):
        response = problem_response(Request(), refusal)  # type: ignore[arg-type]

    assert response.status_code == problem_for(refusal, "/")[0].status
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.fixture
def json_access_log() -> Iterator[io.StringIO]:
    """What the access logger writes while the test runs, as VOICEGATE_LOG_FORMAT=json writes it."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("voicegate.access")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield written
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


#: A request without a body, as the server hands it to the app.
EMPTY: Final = {"type": "http.request", "body": b"", "more_body": False}


def request_id_of(sent: list[dict[str, Any]]) -> str:
    ids = [value.decode() for name, value in sent[0]["headers"] if name == b"x-request-id"]
    assert len(ids) == 1, sent[0]["headers"]
    return str(ids[0])


async def test_each_answer_and_its_access_line_carry_a_new_request_id(json_access_log: io.StringIO) -> None:
    answers = [await serve(exchange(), scope_of(path="/v1/reflections"), [EMPTY]) for _ in range(2)]

    ids = [request_id_of(sent) for sent in answers]
    assert ids[0] != ids[1]
    assert all(re.fullmatch(r"[0-9a-f]{32}", each) for each in ids)
    lines = [json.loads(line) for line in json_access_log.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ids
    assert lines[0]["method"] == "POST"
    assert lines[0]["path"] == "/v1/reflections"
    assert lines[0]["status"] == 200
    assert lines[0]["duration_ms"] >= 0
    assert lines[0]["logger"] == "voicegate.access"
    assert lines[0]["level"] == "INFO"
    assert REQUEST_ID.get() is None


@pytest.mark.parametrize(
    ("sent_id", "kept"),
    [
        (b"req-7f3a.9:edge@lb", True),
        (b"x" * 128, True),
        (b"x" * 129, False),
        (b"has space", False),
        (b"", False),
        (b'quote"d', False),
        ("caf\u00e9".encode(), False),
    ],
    ids=["proxy-id", "128-chars", "129-chars", "space", "empty", "quote", "non-ascii"],
)
async def test_a_clients_request_id_is_kept_only_when_it_is_a_plain_token(
    sent_id: bytes, kept: bool, json_access_log: io.StringIO
) -> None:
    sent = await serve(exchange(), scope_of((b"x-request-id", sent_id)), [EMPTY])

    answered = request_id_of(sent)
    assert (answered == sent_id.decode(errors="replace")) is kept
    assert json.loads(json_access_log.getvalue())["request_id"] == answered
