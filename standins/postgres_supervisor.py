"""The supervisor `voicegate up` keeps beside its embedded PostgreSQL: it starts the server of a data directory
again when its postmaster dies, within a budget of starts, and gives up loudly when the server will not start by
itself."""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Protocol

import psycopg

from standins.postgres import EmbeddedPostgresError, PostmasterState, ServerStillExiting, first_line

log = logging.getLogger(__name__)


class SupervisedServer(Protocol):
    """What the supervisor needs of a server (`EmbeddedPostgres` is one)."""

    data_dir: Path
    port: int

    def postmaster_state(self) -> PostmasterState:
        """Whether its postmaster runs, was stopped, or died."""
        ...

    def postmaster_pid(self) -> int | None:
        """Its postmaster's process id, when it has one."""
        ...

    def ensure_running(self) -> bool:
        """Start it unless it runs; raises ServerStillExiting while what is left of a server that died
        keeps it from starting, EmbeddedPostgresError when it cannot start for another reason."""
        ...


@dataclass(eq=False)
class Supervisor:
    """Starts the postmaster of a data directory again when it dies, as `voicegate up` wants it, whether
    this process started it or found it running (left by an `up` that was killed).

    A thread polls the server every `interval` seconds. A server stopped cleanly (postmaster.pid removed)
    was stopped on purpose and is left alone. When its postmaster has died, what is left of it (backends
    finishing a query, the postmaster not yet reaped) is waited out first, looked at every `recheck`
    seconds: a start then would be refused, and the wait is no restart, so it is not counted, however long.

    The budget is `max_restarts` starts within `window` seconds: a start that brought the server up counts
    once, and so does one that failed for another reason (retried after a backoff doubling from `backoff`).
    When a start fails with the budget spent, the server is not going to start by itself: the supervisor
    gives up and calls `on_give_up` with the reason. A start that can still succeed is always made: past
    the budget, restarts go on, each after a pause doubling from `backoff` up to `max_backoff`, so that a
    server dying as soon as it is up does not spin. Once the server has run `healthy_after` seconds since
    it was last started, earlier starts no longer count. The API and the consumers reconnect on their own
    once the server is back.
    """

    server: SupervisedServer
    on_give_up: Callable[[str], None]
    _: KW_ONLY
    interval: float = 0.5
    recheck: float = 0.1
    max_restarts: int = 5
    window: float = 600.0
    healthy_after: float = 300.0
    backoff: float = 0.5
    max_backoff: float = 60.0
    clock: Callable[[], float] = time.monotonic
    #: Waits the given seconds, or less once asked to stop; True when asked to stop. By default the
    #: supervisor's own stop event; a test gives one that moves its clock instead.
    pause: Callable[[float], bool] | None = None
    gave_up: bool = field(default=False, init=False)
    #: Whether it started the server again at least once (the server now running is this process's).
    restarted: bool = field(default=False, init=False)
    _starts: list[float] = field(default_factory=list, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self.run, name="postgres-supervisor", daemon=True)
        self._pause = self.pause or self._stopping.wait
        #: Written to by `stop`, to end a wait for the postmaster's exit.
        self._stop_pipe = os.pipe()

    def start(self) -> None:
        """Start watching in a thread of its own."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; waits for a start in progress, so the caller may then stop the server."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        os.write(self._stop_pipe[1], b"x")
        if self._thread.is_alive():
            self._thread.join()
        for end in self._stop_pipe:
            os.close(end)

    def run(self) -> None:
        """Watch until stopped, the server is stopped on purpose, or it can no longer be started."""
        up_since = self.clock()
        while not self._pause(self.interval):
            state = self.server.postmaster_state()
            if state == "stopped":
                log.warning("embedded PostgreSQL was shut down (not by voicegate); not restarting it")
                return
            if state == "running":
                self._refill_if_healthy(up_since)
                self._until_exit()
                self._refill_if_healthy(up_since)  # as it ends, which may be long after
                continue
            if not self._restart():
                return
            up_since = self.clock()

    def _until_exit(self) -> None:
        """Wait for the running postmaster to exit, or for the stop, where the kernel can tell (Linux's pidfd);
        elsewhere, or with a pause of a test's, return at once, to look again after `interval`. Looking twice a
        second was most of what an idle `up` did."""
        pid = self.server.postmaster_pid()
        if self.pause is not None or pid is None or not hasattr(os, "pidfd_open"):
            return
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return  # gone already, or not ours to watch: the next look tells
        try:
            watch = select.poll()
            watch.register(pidfd, select.POLLIN)
            watch.register(self._stop_pipe[0], select.POLLIN)
            watch.poll()
        finally:
            os.close(pidfd)

    def _refill_if_healthy(self, up_since: float) -> None:
        """Forget the starts counted so far once the server has run `healthy_after` seconds since."""
        if self._spent() and self.clock() - up_since >= self.healthy_after:
            log.warning(
                "embedded PostgreSQL has run for %g minutes since it was last started; its %d earlier"
                " starts no longer count",
                self.healthy_after / 60,
                len(self._starts),
            )
            self._starts.clear()

    def _spent(self) -> int:
        """The starts counted within the window."""
        now = self.clock()
        self._starts = [at for at in self._starts if now - at < self.window]
        return len(self._starts)

    def _tally(self) -> str:
        """Where the latest start stands in the budget, for the log."""
        spent, minutes = len(self._starts), self.window / 60
        if spent <= self.max_restarts:
            return f"start {spent} of {self.max_restarts} in {minutes:g} minutes"
        return f"start {spent} in {minutes:g} minutes, past the {self.max_restarts} allowed"

    def _restart(self) -> bool:
        """Start the server again; False once given up (or asked to stop)."""
        spent = self._spent()
        if spent < self.max_restarts:
            log.error("embedded PostgreSQL died; restarting it")
        else:
            pace = min(self.backoff * 2 ** (spent - self.max_restarts), self.max_backoff)
            log.error(
                "embedded PostgreSQL died; restarting it in %g s (started %d times in %g minutes already)",
                pace,
                spent,
                self.window / 60,
            )
            if self._pause(pace):
                return False
        delay = self.backoff
        waiting_since, notes = self.clock(), 0
        while not self._stopping.is_set():
            try:
                self.server.ensure_running()
            except ServerStillExiting as exc:
                waited = self.clock() - waiting_since
                if waited >= 30 * notes:  # at first, then every half minute it lasts
                    said = f"still waiting after {waited:.0f} s" if notes else "waiting"
                    log.warning("%s; %s (not counted as a start)", exc, said)
                    notes = int(waited // 30) + 1
                if self._pause(self.recheck):
                    return False
                continue
            except (EmbeddedPostgresError, OSError, psycopg.Error) as exc:
                self._starts.append(self.clock())
                if self._spent() >= self.max_restarts:
                    self._give_up(exc)
                    return False
                log.warning(
                    "embedded PostgreSQL did not start (%s); trying again in %g s: %s", self._tally(), delay, exc
                )
                if self._pause(delay):
                    return False
                delay = min(delay * 2, self.max_backoff)
                continue
            self._starts.append(self.clock())
            log.warning("embedded PostgreSQL is running again on port %d (%s)", self.server.port, self._tally())
            self.restarted = True
            return True
        return False

    def _give_up(self, exc: Exception) -> None:
        """Say why the server will not be started again, and tell `on_give_up`."""
        self.gave_up = True
        reason = (
            f"embedded PostgreSQL did not start ({_server_said(exc)}) and the {self.max_restarts} starts allowed"
            f" in {self.window / 60:g} minutes are spent; giving up (its log: {self.server.data_dir / 'server.log'})"
        )
        log.critical("%s", reason)
        self.on_give_up(reason)


def _server_said(exc: Exception) -> str:
    """Why a start failed in a line: the server's own last FATAL or PANIC line (in the server.log tail the
    error carries), else the error's first line."""
    lines = str(exc).strip().splitlines()
    fatal = [line.strip() for line in lines if "FATAL:" in line or "PANIC:" in line]
    return fatal[-1] if fatal else first_line(exc)
