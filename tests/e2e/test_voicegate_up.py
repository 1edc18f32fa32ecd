"""`voicegate up` on an empty data directory: embedded Postgres, migrations, a healthy API; a database
outage is a 503 within a second and heals without a restart; SIGTERM shuts everything down."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
from storage3 import SyncStorageClient

from backend.embedded.postgres import EmbeddedPostgres, free_port
from tests.conftest import server_dir

pytestmark = pytest.mark.timeout(180)


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    base_url: str
    pg: EmbeddedPostgres
    log: Path


def wait_for(predicate: object, seconds: float, what: str, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `predicate` until it is true; fail after `seconds` or when `process` dies."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"voicegate exited with {process.returncode} while waiting for {what}")
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def readyz(base_url: str) -> httpx.Response | None:
    try:
        return httpx.get(f"{base_url}/readyz", timeout=2)
    except httpx.TransportError:
        return None


def is_ready(base_url: str) -> bool:
    response = readyz(base_url)
    return response is not None and response.status_code == 200


def start_up(tmp_path: Path, pg_port: int | None = None, *extra: str) -> Running:
    port, pg_port = free_port(), pg_port or free_port()
    env = {
        **os.environ,
        "VOICEGATE_DATA_DIR": str(tmp_path / "data"),
        "VOICEGATE_PORT": str(port),
        "VOICEGATE_PG_PORT": str(pg_port),
        "VOICEGATE_LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    log = tmp_path / "voicegate.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "up", *extra],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
    pg = EmbeddedPostgres(tmp_path / "data" / "pgdata", port=pg_port)
    return Running(process, f"http://127.0.0.1:{port}", pg, log)


@pytest.fixture
def data_root() -> Iterator[Path]:
    """Where `up` keeps its data: outside pytest's tmp tree (see tests.conftest.server_dir)."""
    with server_dir("e2e") as root:
        yield root


@pytest.fixture
def running(data_root: Path) -> Iterator[Running]:
    up = start_up(data_root)
    try:
        wait_for(lambda: is_ready(up.base_url), 90, "/readyz 200", up.process)
        yield up
    finally:
        if up.process.poll() is None:
            up.process.kill()
            up.process.wait()
        up.pg.stop(mode="immediate")


def test_up_serves_a_ready_api_on_a_fresh_data_directory(running: Running) -> None:
    assert httpx.get(f"{running.base_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{running.base_url}/readyz").json() == {"status": "ready"}
    assert httpx.get(f"{running.base_url}/schema/openapi.json").json()["info"]["title"] == "voicegate"
    assert b"readiness:" in running.log.read_bytes()


def dev_token(running: Running, user: str) -> str:
    """A token from `voicegate token`, run against the same embedded stack."""
    env = {
        **os.environ,
        "VOICEGATE_DATA_DIR": str(running.pg.data_dir.parent),
        "VOICEGATE_PG_PORT": str(running.pg.port),
    }
    minted = subprocess.run(
        [sys.executable, "-m", "backend.cli", "token", "--user", user],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return minted.stdout.decode().strip()


def test_a_database_outage_is_a_503_within_a_second_and_heals_without_restart(running: Running) -> None:
    auth = {"Authorization": f"Bearer {dev_token(running, 'outage@example.test')}"}
    assert httpx.get(f"{running.base_url}/v1/reflections", headers=auth).status_code == 200
    running.pg.stop(mode="immediate")
    started = time.monotonic()
    wait_for(lambda: (r := readyz(running.base_url)) is not None and r.status_code == 503, 5, "/readyz 503")
    assert time.monotonic() - started < 1.0
    outage = httpx.get(f"{running.base_url}/readyz", timeout=5)
    assert outage.status_code == 503
    assert outage.headers["content-type"].startswith("application/problem+json")
    assert outage.headers["retry-after"] == "2"
    assert outage.json()["code"] == "database_unavailable"
    started = time.monotonic()
    data_route = httpx.post(
        f"{running.base_url}/v1/reflections", json={"name": "during outage"}, headers=auth, timeout=5
    )
    assert time.monotonic() - started < 1.0
    assert (data_route.status_code, data_route.json()["code"]) == (503, "database_unavailable")

    running.pg.ensure_running()
    wait_for(lambda: is_ready(running.base_url), 10, "/readyz 200 again", running.process)
    after = httpx.get(f"{running.base_url}/v1/reflections", headers=auth)
    assert after.status_code == 200
    assert after.json() == {"reflections": []}, "the request made during the outage must not have written anything"


def test_sigterm_stops_the_api_and_the_postgres_it_started(running: Running) -> None:
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(timeout=30) == 0
    assert not running.pg.is_ready()
    assert not (running.pg.data_dir / "postmaster.pid").exists()


def test_up_finds_its_running_postgres_even_on_another_port(data_root: Path) -> None:
    first = start_up(data_root)
    try:
        wait_for(lambda: is_ready(first.base_url), 90, "first /readyz", first.process)
        first.process.kill()
        first.process.wait()
        second = start_up(data_root)  # a new VOICEGATE_PG_PORT: the cluster keeps its own
        wait_for(lambda: is_ready(second.base_url), 60, "second /readyz", second.process)
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(timeout=30) == 0
        assert first.pg.is_ready()
    finally:
        first.pg.stop(mode="immediate")


def test_up_reuses_a_running_postgres_and_leaves_it_running(data_root: Path) -> None:
    first = start_up(data_root)
    try:
        wait_for(lambda: is_ready(first.base_url), 90, "first /readyz", first.process)
        first.process.kill()  # as if the terminal closed: Postgres keeps running
        first.process.wait()
        assert first.pg.is_ready()
        second = start_up(data_root, first.pg.port)
        wait_for(lambda: is_ready(second.base_url), 60, "second /readyz", second.process)
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(timeout=30) == 0
        assert first.pg.is_ready(), "a Postgres that `up` did not start must be left running"
    finally:
        first.pg.stop(mode="immediate")


def test_up_with_fake_providers_serves_each_fake_with_this_runs_keys(data_root: Path) -> None:
    up = start_up(data_root, None, "--fake-providers")
    try:
        wait_for(lambda: is_ready(up.base_url), 90, "/readyz 200", up.process)
        urls = dict(re.findall(r"fake (\w+) provider: (http://127\.0\.0\.1:\d+)", up.log.read_text()))
        assert set(urls) == {"qwen", "elevenlabs", "cartesia", "selfhosted"}
        eleven = httpx.get(f"{urls['elevenlabs']}/v2/voices", headers={"xi-api-key": "sk_test_eleven"})
        assert eleven.status_code == 200
        assert eleven.json()["voices"] == []
        cartesia = httpx.get(
            f"{urls['cartesia']}/voices",
            headers={"Authorization": "Bearer sk_car_test", "Cartesia-Version": "2026-03-01"},
        )
        assert cartesia.status_code == 200
        selfhosted = httpx.get(f"{urls['selfhosted']}/v1/audio/voices")
        assert selfhosted.json() == {"voices": [], "uploaded_voices": []}
        wrong_key = httpx.get(f"{urls['elevenlabs']}/v2/voices", headers={"xi-api-key": "nope"})
        assert wrong_key.status_code == 401
        up.process.send_signal(signal.SIGTERM)
        assert up.process.wait(timeout=30) == 0
    finally:
        if up.process.poll() is None:
            up.process.kill()
            up.process.wait()
        up.pg.stop(mode="immediate")


def test_a_misconfigured_provider_stops_up_before_anything_starts(tmp_path: Path) -> None:
    env = {**os.environ, "VOICE_PROVIDER": "qwen", "VOICEGATE_DATA_DIR": str(tmp_path / "data")}
    env.pop("DASHSCOPE_API_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "up"],
        env=env,
        capture_output=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 2
    assert b"DASHSCOPE_API_KEY is not set" in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_dev_token_and_the_stock_storage_client_work_against_the_embedded_stack(running: Running) -> None:
    token = dev_token(running, "Ada@Example.test")
    reflections = httpx.get(f"{running.base_url}/v1/reflections", headers={"Authorization": f"Bearer {token}"})
    assert reflections.status_code == 200, reflections.text
    assert reflections.json() == {"reflections": []}

    user_id = jwt.decode(token, options={"verify_signature": False})["sub"]
    with SyncStorageClient(
        url=f"{running.base_url}/storage/v1/", headers={"Authorization": f"Bearer {token}"}
    ) as storage:
        files = storage.from_("voice-samples")
        path = f"{user_id}/hello.wav"
        audio = b"RIFF" + bytes(range(256)) * 8
        signed = files.create_signed_upload_url(path)
        files.upload_to_signed_url(path, signed["token"], audio, {"content-type": "audio/wav"})
        url = files.create_signed_url(path, 60)["signedURL"]
    downloaded = httpx.get(url if url.startswith("http") else f"{running.base_url}/storage/v1{url}")
    assert downloaded.status_code == 200
    assert downloaded.content == audio
    assert (running.pg.data_dir.parent / "storage" / "voice-samples" / user_id / "hello.wav").read_bytes() == audio
