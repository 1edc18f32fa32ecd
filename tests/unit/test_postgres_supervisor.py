"""The supervisor `voicegate up` runs over its data directory's Postgres (started or found running):
restarts on death; a start refused while the dead server's processes exit is waited out and not counted;
the budget counts starts that brought the server up or failed for another reason, refills after a period
of health, and is given up (loudly) only when a start fails with it spent; restarts past it go on, paced.

Most tests run the supervisor's loop in the test's thread on a fake clock: its pauses move the clock on
and let what is due by then happen (a death, a stop), so nothing here sleeps or races."""

from __future__ import annotations

import logging
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from standins.postgres import EmbeddedPostgresError, PostmasterState, ServerStillExiting
from standins.postgres_supervisor import Supervisor

HELD = (
    "PostgreSQL of /nonexistent/pgdata died and cannot start again yet:"
    " its shared memory is still held by 2 of its processes"
)
FATAL = 'FATAL:  could not write lock file "postmaster.pid": No space left on device'


class Timeline:
    """A fake clock and the supervisor's pause: a pause moves the clock on, and what is due by then
    happens; the supervisor is told to stop once the clock reaches `until`."""

    def __init__(self, until: float) -> None:
        self.now = 0.0
        self.until = until
        self.events: list[tuple[float, Callable[[], None]]] = []

    def at(self, when: float, action: Callable[[], None]) -> None:
        self.events = sorted([*self.events, (when, action)], key=lambda event: event[0])

    def clock(self) -> float:
        return self.now

    def pause(self, seconds: float) -> bool:
        self.now += seconds
        while self.events and self.events[0][0] <= self.now:
            self.events.pop(0)[1]()
        return self.now >= self.until


class FakeServer:
    """A server whose postmaster dies when told; each start after a death goes as scripted: `held` (the dead
    server's processes still hold its data directory), `fails` (another reason), then it starts."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.data_dir = Path("/nonexistent/pgdata")
        self.port = 5999
        self.state: PostmasterState = "running"
        self.outcomes: list[str] = []
        self.clock = clock
        self.tries: list[tuple[float, str]] = []  # when each start was tried, and how it went

    def die(self, *outcomes: str) -> Callable[[], None]:
        """What kills the postmaster, the starts after it going as `outcomes` says."""

        def kill() -> None:
            self.state = "died"
            self.outcomes = list(outcomes)

        return kill

    def postmaster_state(self) -> PostmasterState:
        return self.state

    def postmaster_pid(self) -> int | None:
        return None

    def ensure_running(self) -> bool:
        outcome = self.outcomes.pop(0) if self.outcomes else "starts"
        self.tries.append((self.clock(), outcome))
        if outcome == "held":
            raise ServerStillExiting(HELD)
        if outcome == "fails":
            raise EmbeddedPostgresError(f"pg_ctl failed with exit code 1: \n--- server.log ---\n{FATAL}\n")
        self.state = "running"
        return True

    def tried(self, outcome: str) -> int:
        return sum(how == outcome for _, how in self.tries)


@pytest.fixture
def gave_up() -> list[str]:
    return []


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="standins.postgres_supervisor")
    return caplog


def supervised(timeline: Timeline, gave_up: list[str], **kwargs: float) -> tuple[FakeServer, Supervisor]:
    server = FakeServer(timeline.clock)
    return server, Supervisor(server, gave_up.append, clock=timeline.clock, pause=timeline.pause, **kwargs)


def messages(log: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in log.records]


def tallies(log: pytest.LogCaptureFixture) -> list[str]:
    """The count each restart that brought the server up was logged with."""
    return [
        m for line in messages(log) if (m := re.sub(r".*running again on port 5999 \((.*)\)$", r"\1", line)) != line
    ]


def test_starts_refused_while_the_dead_server_exits_are_waited_out_and_not_counted(
    gave_up: list[str], log: pytest.LogCaptureFixture
) -> None:
    timeline = Timeline(until=100)
    server, supervisor = supervised(timeline, gave_up, max_restarts=3)
    timeline.at(10, server.die(*["held"] * 100))  # ten seconds of a backend finishing its query
    timeline.at(50, server.die(*["held"] * 100))
    supervisor.run()
    assert (supervisor.gave_up, supervisor.restarted, gave_up, server.state) == (False, True, [], "running")
    assert server.tried("held") == 200
    assert tallies(log) == ["start 1 of 3 in 10 minutes", "start 2 of 3 in 10 minutes"]
    started = [at for at, how in server.tries if how == "starts"]
    assert started == [pytest.approx(20.0), pytest.approx(60.0)], "started at the first look after the wait"
    waits = [m for m in messages(log) if m.startswith(HELD)]
    assert waits == [f"{HELD}; waiting (not counted as a start)"] * 2
    assert [r.levelno for r in log.records if "died; restarting it" in r.getMessage()] == [logging.ERROR] * 2


def test_a_wait_for_the_dead_server_is_noted_every_half_minute_and_never_given_up(
    gave_up: list[str], log: pytest.LogCaptureFixture
) -> None:
    timeline = Timeline(until=1300)
    server, supervisor = supervised(timeline, gave_up, max_restarts=1)
    timeline.at(10, server.die(*["held"] * 12_000))  # twenty minutes: longer than the window
    supervisor.run()
    assert not supervisor.gave_up
    assert server.state == "running"
    assert tallies(log) == ["start 1 of 1 in 10 minutes"]
    notes = [m.removeprefix(f"{HELD}; ") for m in messages(log) if m.startswith(HELD)]
    assert notes[:3] == [
        "waiting (not counted as a start)",
        "still waiting after 30 s (not counted as a start)",
        "still waiting after 60 s (not counted as a start)",
    ]
    assert len(notes) == 40  # at first, then every half minute until it started at 1210 s
    assert notes[-1] == "still waiting after 1170 s (not counted as a start)"


@pytest.mark.parametrize(("third_death_at", "gives_up"), [(200, True), (330, False)], ids=["unhealthy", "healthy"])
def test_the_budget_refills_once_the_server_has_run_healthy_for_a_while(
    gave_up: list[str], log: pytest.LogCaptureFixture, third_death_at: float, gives_up: bool
) -> None:
    """Two restarts spend the budget of two; a failed start then gives up, unless the server had run five
    minutes since it was last started (the window, ten minutes, has not passed either way)."""
    timeline = Timeline(until=third_death_at + 50)
    server, supervisor = supervised(timeline, gave_up, max_restarts=2, healthy_after=300)
    timeline.at(10, server.die())
    timeline.at(20, server.die())
    timeline.at(third_death_at, server.die("fails"))
    supervisor.run()
    assert supervisor.gave_up == gives_up
    refilled = (
        "embedded PostgreSQL has run for 5 minutes since it was last started; its 2 earlier starts no longer count"
    )
    assert (refilled in messages(log)) == (not gives_up)
    if not gives_up:
        assert server.state == "running"
        assert tallies(log) == [
            "start 1 of 2 in 10 minutes",
            "start 2 of 2 in 10 minutes",
            "start 2 of 2 in 10 minutes",
        ]
        failed = "embedded PostgreSQL did not start (start 1 of 2 in 10 minutes); trying again in 0.5 s: pg_ctl failed"
        assert any(m.startswith(failed) for m in messages(log))


def test_a_budget_spent_by_real_restarts_gives_up_at_the_next_failed_start_saying_why(
    gave_up: list[str], log: pytest.LogCaptureFixture
) -> None:
    timeline = Timeline(until=100)
    server, supervisor = supervised(timeline, gave_up, max_restarts=3)
    timeline.at(10, server.die(*["held"] * 20))
    timeline.at(20, server.die(*["held"] * 20))
    timeline.at(30, server.die(*["held"] * 20, "fails", "fails"))
    supervisor.run()
    assert supervisor.gave_up
    assert server.state == "died"
    assert (server.tried("held"), server.tried("fails"), server.tried("starts")) == (60, 1, 2)
    assert tallies(log) == ["start 1 of 3 in 10 minutes", "start 2 of 3 in 10 minutes"]
    assert gave_up == [
        f"embedded PostgreSQL did not start ({FATAL}) and the 3 starts allowed in 10 minutes are spent; giving up"
        " (its log: /nonexistent/pgdata/server.log)"
    ]
    assert log.records[-1].levelno == logging.CRITICAL
    assert log.records[-1].getMessage() == gave_up[0]


def test_starts_that_keep_failing_are_retried_with_backoff_then_given_up(
    gave_up: list[str], log: pytest.LogCaptureFixture
) -> None:
    timeline = Timeline(until=100)
    server, supervisor = supervised(timeline, gave_up, max_restarts=4)
    timeline.at(10, server.die(*["fails"] * 10))
    supervisor.run()
    assert supervisor.gave_up
    assert not supervisor.restarted
    assert [at for at, _ in server.tries] == pytest.approx([10.0, 10.5, 11.5, 13.5])
    assert [m.split(";")[0] for m in messages(log) if "did not start (start" in m] == [
        f"embedded PostgreSQL did not start (start {n} of 4 in 10 minutes)" for n in (1, 2, 3)
    ]
    assert len(gave_up) == 1


def test_restarts_past_the_budget_go_on_each_after_a_longer_pause(
    gave_up: list[str], log: pytest.LogCaptureFixture
) -> None:
    """A server that keeps dying once up is started again as long as it starts: never given up."""
    timeline = Timeline(until=100)
    server, supervisor = supervised(timeline, gave_up, max_restarts=2)
    for death in range(5):
        timeline.at(10 + 10 * death, server.die())
    supervisor.run()
    assert not supervisor.gave_up
    assert server.state == "running"
    assert [at for at, _ in server.tries] == pytest.approx([10.0, 20.0, 30.5, 41.0, 52.0])
    assert tallies(log)[1:] == [
        "start 2 of 2 in 10 minutes",
        "start 3 in 10 minutes, past the 2 allowed",
        "start 4 in 10 minutes, past the 2 allowed",
        "start 5 in 10 minutes, past the 2 allowed",
    ]
    assert "embedded PostgreSQL died; restarting it in 2 s (started 4 times in 10 minutes already)" in messages(log)


def test_a_server_stopped_on_purpose_is_left_alone(gave_up: list[str], log: pytest.LogCaptureFixture) -> None:
    timeline = Timeline(until=100)
    server, supervisor = supervised(timeline, gave_up)

    def stop() -> None:
        server.state = "stopped"

    timeline.at(10, stop)
    supervisor.run()
    assert timeline.now == pytest.approx(10.0), "it stopped watching"
    assert server.tries == []
    assert server.state == "stopped"
    assert not supervisor.restarted
    assert messages(log)[-1] == "embedded PostgreSQL was shut down (not by voicegate); not restarting it"


def test_stopping_ends_a_wait_for_the_dead_server_in_its_thread(gave_up: list[str]) -> None:
    """The thread `up` runs it in, on the real clock: stop() ends a wait at once, as `up` shuts down."""
    server = FakeServer()
    server.die(*["held"] * 1_000_000)()
    supervisor = Supervisor(server, gave_up.append, interval=0.01, recheck=0.01)
    supervisor.start()
    deadline = time.monotonic() + 10
    while server.tried("held") < 3:  # polled: the thread says nothing while it waits
        assert time.monotonic() < deadline, "no start was tried"
        time.sleep(0.005)
    stopping = time.monotonic()
    supervisor.stop()
    assert time.monotonic() - stopping < 1.0
    assert (supervisor.gave_up, gave_up, server.tried("starts")) == (False, [], 0)


class ProcessServer(FakeServer):
    """A server whose postmaster is a real process: it runs while the process does, then it died. Counts looks."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        super().__init__()
        self.process = process
        self.looks = 0

    def postmaster_state(self) -> PostmasterState:
        self.looks += 1
        return "running" if self.process.poll() is None else self.state

    def postmaster_pid(self) -> int | None:
        return self.process.pid


def test_a_running_server_is_watched_through_its_process_not_looked_at_again(gave_up: list[str]) -> None:
    """On Linux the thread waits on the postmaster's process (a pidfd) instead of looking at the server every
    `interval`: an idle `up` spent most of its CPU looking. Its death is still seen at once."""
    process = subprocess.Popen(["sleep", "60"])
    server = ProcessServer(process)
    server.state = "died"
    supervisor = Supervisor(server, gave_up.append, interval=0.01, recheck=0.01)
    supervisor.start()
    try:
        deadline = time.monotonic() + 10
        while server.looks < 1:
            assert time.monotonic() < deadline, "the server was never looked at"
            time.sleep(0.005)
        time.sleep(0.5)  # fifty intervals, over which a supervisor that polls would look fifty times
        assert server.looks == 1
        process.kill()
        process.wait()
        died = time.monotonic()
        while server.tried("starts") < 1:
            assert time.monotonic() - died < 5, "the death was not seen"
            time.sleep(0.005)
        assert time.monotonic() - died < 1.0
    finally:
        supervisor.stop()
        process.kill()
        process.wait()
    assert gave_up == []
