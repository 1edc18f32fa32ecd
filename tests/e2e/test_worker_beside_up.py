"""A `voicegate worker` started beside `voicegate up --port P`, with nothing but the data directory, finds
the API (and so the Storage stand-in) on P and does the queue's work; one that cannot reach Storage
refuses to start with one line and exit code 2 instead of waiting for it forever."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devkit.audio_corpus import speech_wav
from devkit.up import dev_token, running_up, start_worker, tls_context, wait_for
from standins.postgres import for_data_dir, free_port
from tests.conftest import server_dir

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def data_root() -> Iterator[Path]:
    with server_dir("beside") as root:
        yield root


def stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.kill()
        worker.wait(10)


def test_a_worker_beside_up_on_another_port_does_the_work(data_root: Path) -> None:
    with running_up(data_root, None, "--no-consumers") as up:
        assert not up.base_url.endswith(":8000")
        auth = {"Authorization": f"Bearer {dev_token(up, 'beside@example.test')}"}
        uploaded = httpx.post(
            f"{up.base_url}/api/v1/voice-samples",
            data={"consent": "true"},
            files={"file": ("me.wav", speech_wav(seed=3), "audio/wav")},
            headers=auth,
            timeout=30,
        )
        assert uploaded.status_code == 202, uploaded.text
        status_url = f"{up.base_url}/api/v1/voice-samples/{uploaded.json()['sampleId']}/status"
        worker = start_worker(up.pg.data_dir.parent, data_root / "worker.log")
        try:

            def checked() -> bool:
                return httpx.get(status_url, headers=auth, timeout=10, verify=tls_context()).json()["status"] in {
                    "ready",
                    "failed",
                }

            # `up` runs no consumers: only the worker can check the sample, which it reads from Storage.
            wait_for(checked, 120, "the worker to check the sample", worker)
            assert httpx.get(status_url, headers=auth, timeout=10).json()["status"] == "ready"
        finally:
            stop(worker)


def test_a_worker_that_cannot_reach_storage_refuses_to_start_in_one_line(data_root: Path) -> None:
    # The data directory's Postgres runs (an `up` killed with SIGKILL leaves it so), but no `up` does.
    pg = for_data_dir(data_root / "data", free_port())
    pg.ensure_running()
    try:
        port = free_port()
        worker = start_worker(pg.data_dir.parent, data_root / "worker.log", VOICEGATE_PORT=str(port))
        try:
            assert worker.wait(60) == 2
        finally:
            stop(worker)
    finally:
        pg.stop(mode="immediate")
    said = (data_root / "worker.log").read_text()
    assert said.splitlines() == [said.rstrip("\n")], said
    assert said.startswith(
        f"voicegate: cannot reach Storage at http://127.0.0.1:{port}/storage/v1 (ConnectionRefusedError: "
    ), said
    assert said.rstrip("\n").endswith(
        f"no `voicegate up` is running for {data_root / 'data'}: start it,"
        " or set VOICEGATE_PUBLIC_URL to the address of the API that serves its Storage"
    ), said
