"""`voicegate`'s log records go to standard error as it is when each is written: a process that swaps it
(a test's capture swaps and closes it) loses none and prints no "Logging error"."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

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
