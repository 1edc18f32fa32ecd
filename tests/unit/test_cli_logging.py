"""`voicegate`'s log records go to standard error as it is when each is written: a process that swaps it
(a test's capture swaps and closes it) loses none and prints no "Logging error"; as JSON, each is one line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from backend.logs import REQUEST_ID
from voicegate.cli import configure_logging


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The root logger's handlers and level put back after the test (configure_logging replaces them)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.usefixtures("root_logging")
def test_records_follow_standard_error_when_it_is_swapped_and_the_old_one_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    configure_logging("INFO")
    logging.getLogger("voicegate.test").info("before the swap")
    first.close()
    monkeypatch.setattr("sys.stderr", second)

    logging.getLogger("voicegate.test").info("after the swap")
    logging.getLogger("voicegate.test").debug("below the level")

    written = second.getvalue()
    assert written.endswith(" INFO voicegate.test: after the swap\n")
    assert "Logging error" not in written
    assert "below the level" not in written


@pytest.mark.usefixtures("root_logging")
def test_no_request_url_of_httpx_reaches_the_log_at_any_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """A signed Storage URL carries its token: httpx's INFO line of each request is never written, even at
    DEBUG, whether or not something quieted httpx before: `configure_logging` is the one place that does."""
    written = io.StringIO()
    monkeypatch.setattr("sys.stderr", written)
    httpx_log = logging.getLogger("httpx")
    monkeypatch.setattr(httpx_log, "level", logging.NOTSET)
    configure_logging("DEBUG")
    httpx_log.info('HTTP Request: GET http://127.0.0.1/storage/v1/object/sign/b/o?token=secret "HTTP/1.1 200 OK"')
    httpx_log.warning("a warning of httpx's")
    assert "token=secret" not in written.getvalue()
    assert "a warning of httpx's" in written.getvalue()


@pytest.mark.usefixtures("root_logging")
def test_json_lines_name_the_request_and_carry_a_traceback_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    written = io.StringIO()
    monkeypatch.setattr("sys.stderr", written)
    configure_logging("INFO", "json")
    served_as = REQUEST_ID.set("req-1")
    try:
        try:
            raise ValueError("the provider's answer")  # noqa: TRY301 - the record's traceback is under test
        except ValueError:
            logging.getLogger("voicegate.test").exception("a call failed:\nits second line")
    finally:
        REQUEST_ID.reset(served_as)
    # As uvicorn writes its own records: the message again in colour, which is not a field of the line; nor is
    # what any other `extra=` holds, but the access line's fields.
    logging.getLogger("voicegate.test.server").info(
        "Started server process [%d]", 7, extra={"color_message": "\x1b[1m", "authorization": "Bearer secret"}
    )
    logging.getLogger("voicegate.test.access").info("a request", extra={"status": 200, "url": "/o?token=secret"})

    lines = written.getvalue().splitlines()
    assert len(lines) == 3  # a record is one line, whatever its message and traceback hold
    failed, started, access = (json.loads(line) for line in lines)
    assert "secret" not in written.getvalue()
    assert access["status"] == 200
    assert failed["request_id"] == "req-1"
    assert failed["level"] == "ERROR"
    assert failed["logger"] == "voicegate.test"
    assert failed["message"] == "a call failed:\nits second line"
    assert failed["exception"].startswith("Traceback (most recent call last):")
    assert failed["exception"].endswith("ValueError: the provider's answer")
    assert datetime.fromisoformat(failed["time"]).utcoffset() == timedelta(0)
    assert started == {
        "time": started["time"],
        "level": "INFO",
        "logger": "voicegate.test.server",
        "message": "Started server process [7]",
    }
