"""Outages log their start and their end, not every failure: one traceback per kind of cause."""

from __future__ import annotations

import logging

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from backend.db.units import translate_db_errors
from backend.errors import DatabaseUnavailable
from backend.outages import Outage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def unavailable(cause: Exception) -> DatabaseUnavailable:
    """A DatabaseUnavailable raised from `cause`, as backend.db.units raises it."""
    try:
        with translate_db_errors():
            raise cause
    except DatabaseUnavailable as exc:
        return exc
    raise AssertionError("not translated")


@pytest.fixture
def outage(caplog: pytest.LogCaptureFixture) -> tuple[Outage, Clock]:
    caplog.set_level(logging.DEBUG, logger="test.outages")
    clock = Clock()
    return Outage("database", logger=logging.getLogger("test.outages"), clock=clock), clock


def records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str, bool]]:
    return [(r.levelno, r.getMessage(), r.exc_info is not None) for r in caplog.records if r.name == "test.outages"]


def test_an_outage_of_many_failed_requests_is_two_lines(
    outage: tuple[Outage, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    tracker, clock = outage
    for n in range(245):
        # The same cause each time, though its numbers vary (a port, a timeout).
        tracker.failed(unavailable(psycopg.OperationalError(f"connection to 127.0.0.1 port {5000 + n} refused")))
        assert tracker.down
        clock.now += 0.05
    clock.now += 0.25
    tracker.recovered()
    tracker.recovered()  # already up: nothing more to say
    assert not tracker.down
    assert records(caplog) == [
        (logging.ERROR, "database unavailable: OperationalError: connection to 127.0.0.1 port 5000 refused", True),
        (logging.WARNING, "database available again after 245 failed requests over 12.5 s", False),
    ]


def test_each_new_kind_of_cause_gets_one_traceback(
    outage: tuple[Outage, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    tracker, _ = outage
    for _ in range(3):
        tracker.failed(unavailable(psycopg.OperationalError("server closed the connection unexpectedly")))
        tracker.failed(unavailable(PoolTimeout("couldn't get a connection after 0.75 sec")))
    assert [(level, message) for level, message, traced in records(caplog) if traced] == [
        (logging.ERROR, "database unavailable: OperationalError: server closed the connection unexpectedly"),
        (logging.ERROR, "database still unavailable, now: PoolTimeout: couldn't get a connection after 0.75 sec"),
    ]
    assert len(records(caplog)) == 2
    traceback = caplog.records[0].exc_info
    assert traceback is not None
    assert isinstance(traceback[1], DatabaseUnavailable)


def test_the_next_outage_is_logged_afresh(outage: tuple[Outage, Clock], caplog: pytest.LogCaptureFixture) -> None:
    tracker, clock = outage
    cause = psycopg.OperationalError("server closed the connection unexpectedly")
    tracker.failed(unavailable(cause))
    clock.now += 2
    tracker.recovered()
    tracker.failed(unavailable(cause))
    tracker.failed(unavailable(cause))
    clock.now += 1
    tracker.recovered()
    assert [(level, message) for level, message, _ in records(caplog)] == [
        (logging.ERROR, "database unavailable: OperationalError: server closed the connection unexpectedly"),
        (logging.WARNING, "database available again after 1 failed requests over 2.0 s"),
        (logging.ERROR, "database unavailable: OperationalError: server closed the connection unexpectedly"),
        (logging.WARNING, "database available again after 2 failed requests over 1.0 s"),
    ]


def test_an_answer_to_what_was_asked_before_the_outage_does_not_end_it(
    outage: tuple[Outage, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    # A request sent just before the database went away gets its answer as another request sees it go
    # (a shutting-down server ends its sessions one by one): that answer is no sign the database is back.
    tracker, clock = outage
    asked_before = clock.now
    clock.now += 0.01
    tracker.failed(unavailable(psycopg.OperationalError("server closed the connection unexpectedly")))
    clock.now += 0.01
    tracker.recovered(asked_before)
    assert tracker.down
    clock.now += 3
    tracker.recovered(clock.now - 0.5)  # asked after the outage began
    assert not tracker.down
    assert [(level, message) for level, message, _ in records(caplog)] == [
        (logging.ERROR, "database unavailable: OperationalError: server closed the connection unexpectedly"),
        (logging.WARNING, "database available again after 1 failed requests over 3.0 s"),
    ]


def test_failures_that_differ_only_in_the_object_they_were_for_are_one_kind(
    outage: tuple[Outage, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    """Storage's errors name the object's URL: a 10 s outage under uploads logged a traceback per upload."""
    tracker, _ = outage
    for path in ("a15f5f3c-852d/original", "b2c0e1aa-77f0/processed.wav", "info/ffe0-ab/x"):
        tracker.failed(
            RuntimeError(
                f"Server error '503 Service Unavailable' for url 'http://voicegate.internal/storage/v1/{path}'"
            )
        )
    assert len(records(caplog)) == 1
