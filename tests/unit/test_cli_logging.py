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
