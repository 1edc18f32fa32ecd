"""The supervisor `voicegate up` runs over its data directory's Postgres (started or found running):
restarts on death, with backoff and a bound, leaves a server stopped on purpose alone, and gives up
loudly on a crash loop."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from backend.embedded.postgres import EmbeddedPostgresError, PostmasterState, Supervisor


class FakeServer:
    """A server whose postmaster dies when told and starts (or fails to) as scripted."""

    def __init__(self, starts: list[bool]) -> None:
        self.data_dir = Path("/nonexistent/pgdata")
        self.port = 5999
        self.state: PostmasterState = "running"
        self.starts = starts  # the outcome of each start, in order; True once they run out
        self.attempts = 0

    def postmaster_state(self) -> PostmasterState:
        return self.state

    def ensure_running(self) -> bool:
        self.attempts += 1
        ok = self.starts.pop(0) if self.starts else True
        if not ok:
            raise EmbeddedPostgresError("pg_ctl failed with exit code 1: shared memory block still in use")
        self.state = "running"
        return True


@pytest.fixture
def gave_up() -> list[str]:
    return []


def supervise(server: FakeServer, gave_up: list[str], **kwargs: float) -> Supervisor:
    supervisor = Supervisor(server, gave_up.append, interval=0.01, backoff=0.01, **kwargs)
    supervisor.start()
    return supervisor


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="backend.embedded.postgres")
    return caplog


def wait(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll what the supervisor's thread makes true."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def test_a_dead_postmaster_is_started_again_after_failed_attempts(
    gave_up: list[str], log: pytest.LogCaptureFixture
) -> None:
    server = FakeServer(starts=[False, False, True])
    supervisor = supervise(server, gave_up)
    try:
        server.state = "died"
        wait(lambda: server.state == "running" and server.attempts == 3)
    finally:
        supervisor.stop()
    assert (supervisor.gave_up, supervisor.restarted, gave_up) == (False, True, [])
    messages = [r.getMessage() for r in log.records]
    assert [m for m in messages if "restarting it" in m] == [
        f"embedded PostgreSQL died; restarting it (attempt {n} of 5 in 10 minutes)" for n in (1, 2, 3)
    ]
    assert sum("did not start; trying again" in m for m in messages) == 2
    assert messages[-1] == "embedded PostgreSQL is running again on port 5999"


def test_it_keeps_restarting_a_server_that_dies_now_and_then(gave_up: list[str]) -> None:
    server = FakeServer(starts=[])
    supervisor = supervise(server, gave_up)
    try:
        for attempts in (1, 2, 3):
            server.state = "died"
            wait(lambda: server.state == "running")
            assert server.attempts == attempts
    finally:
        supervisor.stop()
    assert not supervisor.gave_up


def test_a_crash_loop_makes_it_give_up_with_the_reason(gave_up: list[str], log: pytest.LogCaptureFixture) -> None:
    server = FakeServer(starts=[False] * 10)
    supervisor = supervise(server, gave_up, max_restarts=3, window=60.0)
    try:
        server.state = "died"
        wait(lambda: bool(gave_up))
    finally:
        supervisor.stop()
    assert supervisor.gave_up
    assert not supervisor.restarted
    assert server.attempts == 3
    assert gave_up == [
        "embedded PostgreSQL died or failed to start 3 times within 1 minutes; giving up"
        " (its log: /nonexistent/pgdata/server.log)"
    ]
    assert log.records[-1].levelno == logging.CRITICAL


def test_a_server_stopped_on_purpose_is_left_alone(gave_up: list[str], log: pytest.LogCaptureFixture) -> None:
    server = FakeServer(starts=[])
    supervisor = supervise(server, gave_up)
    server.state = "stopped"
    wait(lambda: any("not restarting it" in r.getMessage() for r in log.records))
    supervisor.stop()
    assert server.attempts == 0
    assert server.state == "stopped"
    assert not supervisor.restarted
