"""Recovery under load (issue 45): with clients uploading samples over keep-alive connections, a 5 s pause of
every Postgres process is a prompt 503 with Retry-After while it lasts, and the API is serving again within
seconds of its end; every sample it accepted ends ready. An upload whose `up` was killed after it stored the
file and before its rows committed, retried with its Idempotency-Key, is stored once: no object is left that
no row claims.

Before issue 45, the uploads' connections stayed 503 for minutes after the pause: a request's database budget
leaked into the next requests on its connection (asyncio hands a transport's reader the context of the task
that resumes reading, CPython #140947; uvicorn resumes reading from the request's task once a large body has
paused it), so once one request had spent its budget in the outage, every later one on that connection was
refused at once."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from backend.storage.orphans import sweep_orphan_objects
from devkit.audio_corpus import speech_wav
from devkit.up import Running, dev_token, is_ready, running_up, start_up, wait_for
from tests.conftest import server_dir
from tests.support import frozen

pytestmark = pytest.mark.timeout(180)

CLIENTS = 8
PAUSE_S = 5.0
#: Seconds after the pause ends from which uploads must be served again (the issue's target is 10 s).
BACK_WITHIN_S = 5.0
#: Seconds of uploads watched once they must be served again.
WATCHED_S = 4.0
#: Seconds between one client's uploads: every connection in use, and fewer uploads (8 clients, about 4 a second)
#: than the consumers check (a 4 s sample costs about 0.4 s of CPU), so that what the test meets after the pause is
#: the database's recovery, not `backlog_full`, the answer to more uploads than the server can check.
PACE_S = 2.0


@dataclass(frozen=True)
class Upload:
    sent_at: float
    status: int | None
    code: str | None
    retry_after: str | None
    sample_id: str | None


@pytest.fixture
def running() -> Iterator[Running]:
    with server_dir("recovery") as root, running_up(root) as up:
        yield up


def upload_until(stop: threading.Event, base_url: str, token: str, sample: bytes, log: list[Upload]) -> None:
    """Upload `sample` over one keep-alive connection until `stop`, noting each answer."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                response = client.post(
                    "/api/v1/voice-samples", files={"file": ("take.wav", sample, "audio/wav")}, data={"consent": "true"}
                )
            except httpx.TransportError:
                log.append(Upload(sent, None, None, None, None))
                continue
            body = response.json()
            log.append(
                Upload(
                    sent,
                    response.status_code,
                    body.get("code"),
                    response.headers.get("retry-after"),
                    body.get("sampleId") if response.status_code == 202 else None,
                )
            )
            stop.wait(PACE_S)


def sample_statuses(up: Running, ids: list[str]) -> Counter[str]:
    with psycopg.connect(up.pg.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select status from public.voice_samples where id = any(%s)", ([uuid.UUID(i) for i in ids],)
        ).fetchall()
    return Counter(str(status) for (status,) in rows)


def test_uploading_clients_are_served_again_within_seconds_of_a_database_pause(running: Running) -> None:
    token = dev_token(running, "recovery@example.test")
    sample = speech_wav(4.0)
    assert len(sample) > 256 * 1024, "a body large enough for the server to pause and resume reading it"
    stop = threading.Event()
    logs: list[list[Upload]] = [[] for _ in range(CLIENTS)]
    clients = [threading.Thread(target=upload_until, args=(stop, running.base_url, token, sample, log)) for log in logs]
    for client in clients:
        client.start()
    started = time.monotonic()
    try:
        while sum(1 for log in logs for u in log if u.status == 202) < 2 * CLIENTS:
            assert all(client.is_alive() for client in clients)
            assert time.monotonic() - started < 60, "uploads are served before the pause"
            time.sleep(0.1)
        with frozen(running.pg.data_dir):
            paused_at = time.monotonic()
            stop.wait(PAUSE_S)
        resumed_at = time.monotonic()
        stop.wait(BACK_WITHIN_S + WATCHED_S)
    finally:
        stop.set()
        for client in clients:
            client.join(60)
    uploads = [u for log in logs for u in log]
    during = [u for u in uploads if paused_at + 1.5 <= u.sent_at < resumed_at - 1.5]
    assert during, "uploads were sent during the pause"
    assert all(u.status == 503 and u.retry_after is not None for u in during), Counter(
        (u.status, u.code) for u in during
    )
    watched = [u for u in uploads if resumed_at + BACK_WITHIN_S <= u.sent_at]
    assert len(watched) >= CLIENTS, f"only {len(watched)} uploads sent once they must be served"
    served = sum(1 for u in watched if u.status == 202)
    assert served >= 0.9 * len(watched), (
        f"{served} of {len(watched)} uploads served {BACK_WITHIN_S:g} s after the pause: "
        f"{Counter((u.status, u.code) for u in watched)}"
    )
    assert not [u for u in uploads if u.status is not None and u.status >= 500 and u.status != 503]

    accepted = [u.sample_id for u in uploads if u.sample_id is not None]
    deadline = time.monotonic() + 90
    while (statuses := sample_statuses(running, accepted)) != Counter({"ready": len(accepted)}):
        assert time.monotonic() < deadline, f"of {len(accepted)} accepted samples: {statuses}"
        time.sleep(0.5)


def test_an_upload_met_by_a_database_out_of_reach_is_refused_before_its_body_is_sent(running: Running) -> None:
    """The client announces its body and waits for `100 Continue` (as curl does for a large upload): the refusal
    comes instead, so not a byte of the sample crosses the network, let alone reaches Storage."""
    token = dev_token(running, "refused@example.test")
    host, port = running.base_url.removeprefix("http://").split(":")
    with frozen(running.pg.data_dir):
        # The first request finds the database out of reach the slow way, waiting for a connection.
        first = httpx.get(
            f"{running.base_url}/v1/reflections", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert first.status_code == 503
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            started = time.monotonic()
            sock.sendall(
                b"POST /api/v1/voice-samples HTTP/1.1\r\n"
                + f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n".encode()
                + b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 500000\r\n"
                + b"Expect: 100-continue\r\n\r\n"
            )
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                assert chunk, f"the connection closed after {head!r}"
                head += chunk
            waited = time.monotonic() - started
        # Served whatever the database does: the refusal is counted for the operator.
        metrics = httpx.get(f"{running.base_url}/metrics", timeout=5).text
    status, *headers = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert status == "HTTP/1.1 503 Service Unavailable", f"{status} (a 100 Continue asks for the body)"
    assert "retry-after: 2" in [h.lower() for h in headers]
    assert waited < 0.5
    [refused] = [
        line for line in metrics.splitlines() if line.startswith('voicegate_database_refusals_total{kind="api"}')
    ]
    assert float(refused.split()[-1]) >= 1, refused


def unclaimed_objects(dsn: str) -> list[str]:
    """Objects no row claims, however recent (`voicegate ops sweep-orphan-objects`'s dry run, no grace)."""

    async def find() -> list[str]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
            now = (await (await conn.execute("select now() as now")).fetchone() or {})["now"]
            batch = await sweep_orphan_objects(conn, None, written_before=now, limit=100, apply=False, actor="test")
        return [f"{o.bucket_id}/{o.name}" for o in batch.objects]

    return asyncio.run(find())


@pytest.mark.parametrize("route", ["/api/v1/voice-samples", "/v1/reflections/{id}/voice/clone"])
def test_an_upload_retried_after_up_died_between_storing_it_and_its_rows_is_stored_once(
    route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`up` dies (SIGKILL, no cleanup) right after Storage committed the upload's object; the client's retry
    with the same Idempotency-Key, once the dead request's claim is abandoned, reaches the next `up`. Before,
    the retry stored the file again under a new name and the first object stayed, claimed by no row, until
    the orphan sweep's grace period (an hour) had passed."""
    with server_dir("recovery") as root:
        monkeypatch.setenv("VOICEGATE_FAILPOINTS", "after_upload_stored")
        doomed = start_up(root)
        monkeypatch.delenv("VOICEGATE_FAILPOINTS")
        again: Running | None = None
        try:
            wait_for(lambda: is_ready(doomed.base_url), 120, "/readyz 200", doomed)
            auth = {"Authorization": f"Bearer {dev_token(doomed, 'killed-mid-upload@example.test')}"}
            if "{id}" in route:
                made = httpx.post(f"{doomed.base_url}/v1/reflections", json={"name": "Ada"}, headers=auth)
                route = route.format(id=made.json()["id"])
            sample = speech_wav(4.0)

            def upload(base_url: str) -> httpx.Response:
                return httpx.post(
                    base_url + route,
                    headers={**auth, "Idempotency-Key": "the-upload"},
                    files={"file": ("take.wav", sample, "audio/wav")},
                    data={"consent": "true"},
                    timeout=60,
                )

            with pytest.raises(httpx.TransportError):
                upload(doomed.base_url)
            assert doomed.process.wait(30) == -signal.SIGKILL
            assert len(unclaimed_objects(doomed.pg.dsn)) == 1, "the failpoint comes after the object's commit"
            # The dead request's claim is abandoned once its lease (60 s) has run out: aged here, not waited for.
            with psycopg.connect(doomed.pg.dsn, autocommit=True) as conn:
                conn.execute("update voicegate.idempotency_keys set created_at = now() - interval '61 seconds'")

            again = start_up(root, doomed.pg.port)
            up = again
            wait_for(lambda: is_ready(up.base_url), 120, "/readyz 200 after the kill", up)
            retried = upload(up.base_url)
            assert retried.status_code == 202, retried.text
            assert unclaimed_objects(up.pg.dsn) == []
        finally:
            for started in (doomed, again):
                if started is not None and started.process.poll() is None:
                    started.process.kill()
                    started.process.wait(timeout=30)
            doomed.pg.stop(mode="immediate")
