"""`voicegate up` with VOICEGATE_API_PROCESSES=2: the API served from two processes on one port (new connections
answered by both), and both gone when `up` stops, by a signal or killed."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devkit.up import Running, api_children, running_up, tls_context, wait_for
from tests.conftest import server_dir

pytestmark = pytest.mark.timeout(180)

#: What tells two API processes apart in `/metrics`: prometheus_client's process collector's start time.
_STARTED = re.compile(r"^process_start_time_seconds (\S+)$", re.MULTILINE)


@pytest.fixture
def two() -> Iterator[Running]:
    with server_dir("e2e") as root, running_up(root, settings={"VOICEGATE_API_PROCESSES": "2"}) as up:
        yield up


def _answering(base_url: str) -> str:
    """The start time of the API process that answers `/metrics` on a new connection."""
    answer = httpx.get(f"{base_url}/metrics", timeout=10, verify=tls_context()).raise_for_status()
    started = _STARTED.search(answer.text)
    assert started is not None, answer.text[:500]
    return started.group(1)


def _gone(pid: int) -> bool:
    """`pid` has exited and been reaped (or is a zombie no longer running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def _served_by_both(up: Running) -> list[int]:
    """The other API process, once new connections have been answered by both processes."""
    seen: set[str] = set()

    def both() -> bool:
        seen.add(_answering(up.base_url))
        return len(seen) == 2

    wait_for(both, 60, "answers from two processes", up)
    assert len(seen) == 2
    children = api_children(up.process.pid)
    assert len(children) == 1, children
    return children


def test_up_serves_from_two_processes_and_a_stop_signal_stops_both(two: Running) -> None:
    (child,) = _served_by_both(two)

    two.process.send_signal(signal.SIGTERM)

    assert two.process.wait(timeout=60) == 0
    assert _gone(child), "the second API process stops with `up`"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{two.base_url}/healthz", timeout=5)


def test_the_second_api_process_ends_when_up_is_killed(two: Running) -> None:
    (child,) = _served_by_both(two)

    two.process.kill()
    two.process.wait(timeout=30)

    wait_for(lambda: _gone(child), 60, "the second API process to end")
