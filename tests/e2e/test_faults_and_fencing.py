"""Provider faults and competing workers, with the consumers in-process against the ElevenLabs fake:
at 30 % provider errors every attempt ends ready or failed with a reason (none stuck); two workers on
one queue never work one attempt at once; a worker whose lease expired cannot overwrite the result of
the worker that took over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from psycopg.rows import dict_row

from devkit.audio_corpus import speech_wav
from devkit.db import Conn
from fakes import ElevenLabsFake, serve
from fakes.core import Fault
from tests.e2e.conftest import elevenlabs_env, process_by_hand, served_app, until_create_sent
from tests.integration.api.conftest import User

Client = AsyncTestClient  # type: ignore[type-arg]
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def fake() -> Iterator[tuple[ElevenLabsFake, str]]:
    provider = ElevenLabsFake(max_voices=1000)
    with serve(provider) as url:
        yield provider, url


@pytest.fixture
async def app(worker_client: Callable[..., Any], fake: tuple[ElevenLabsFake, str]) -> Client:
    provider, url = fake
    return await worker_client(
        VOICE_PROVIDER="elevenlabs", ELEVENLABS_API_KEY=provider.api_key, ELEVENLABS_BASE_URL=url
    )


async def seed(client: Client, user: User, count: int) -> list[str]:
    ids = []
    for n in range(count):
        reflection = (await client.post("/v1/reflections", json={"name": f"r{n}"}, headers=user.headers)).json()
        accepted = await client.post(
            f"/v1/reflections/{reflection['id']}/voice/clone",
            data={"consent": "true", "language": "en"},
            files={"file": ("me.wav", speech_wav(seed=n), "audio/wav")},
            headers=user.headers,
        )
        assert accepted.status_code == 202, accepted.text
        ids.append(accepted.json()["attemptId"])
    return ids


def attempts(sql: Conn) -> list[dict[str, Any]]:
    with sql.cursor(row_factory=dict_row) as cur:
        return cur.execute("select * from voice_clone_attempts order by created_at").fetchall()


async def until_all_end(sql: Conn, within: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        rows = attempts(sql)
        if all(r["status"] == "failed" or (r["status"] == "ready" and r["preview_status"] == "ready") for r in rows):
            return rows
        assert time.monotonic() < deadline, [(r["status"], r["retry_count"], r["last_error_code"]) for r in rows]
        await asyncio.sleep(0.1)


def voices_by_key(provider: ElevenLabsFake) -> dict[str, int]:
    """Provider voices per enrolment marker (the adapter writes it into the description)."""
    counts: dict[str, int] = {}
    for voice in provider.voices.values():
        marker = (voice.description or "").split("[voicegate:")[-1]
        counts[marker] = counts.get(marker, 0) + 1
    return counts


async def test_thirty_percent_provider_errors_end_ready_or_failed_with_a_reason(
    app: Client, fake: tuple[ElevenLabsFake, str], make_user: Callable[[], User], sql: Conn
) -> None:
    provider, _ = fake
    provider.faults.fail_at_rate(0.3, Fault("status", 503), seed=7)
    await seed(app, make_user(), 8)
    rows = await until_all_end(sql)
    assert all(r["status"] in {"ready", "failed"} for r in rows)
    assert all(r["last_error_code"] for r in rows if r["status"] == "failed")
    assert all(r["retry_count"] <= r["max_retries"] for r in rows)
    assert sum(r["status"] == "ready" for r in rows) >= 1
    # Some requests really failed, and no attempt ever made two provider voices.
    assert len(provider.requests_to("POST", "/v1/voices/add")) > len(provider.voices)
    assert all(count == 1 for count in voices_by_key(provider).values())
    ready_ids = {r["provider_voice_id"] for r in rows if r["status"] == "ready"}
    assert ready_ids <= set(provider.voices)


async def test_two_workers_never_work_one_attempt_at_once(
    app: Client,
    worker_client: Callable[..., Any],
    fake: tuple[ElevenLabsFake, str],
    make_user: Callable[[], User],
    sql: Conn,
) -> None:
    provider, url = fake
    provider.faults.latency_s = 0.2
    # A second app is a second worker: its own pool, consumers and worker id, on the same queues.
    await worker_client(VOICE_PROVIDER="elevenlabs", ELEVENLABS_API_KEY=provider.api_key, ELEVENLABS_BASE_URL=url)
    await seed(app, make_user(), 6)
    rows = await until_all_end(sql)
    assert [r["status"] for r in rows] == ["ready"] * 6
    claims = sql.execute(
        "select attempt_id, actor from voice_clone_attempt_events where to_state = 'processing'"
    ).fetchall()
    # One claim per attempt (a second claim would mean two workers held it), by either worker.
    assert sorted(str(a) for a, _ in claims) == sorted(str(r["id"]) for r in rows)
    assert len(provider.voices) == 6
    assert all(count == 1 for count in voices_by_key(provider).values())


async def test_a_worker_past_its_lease_cannot_overwrite_the_new_workers_result(
    db_dsn: str, tmp_path: Path, fake: tuple[ElevenLabsFake, str], make_user: Callable[[], User], sql: Conn
) -> None:
    provider, url = fake
    env = elevenlabs_env(provider, url)
    user = make_user()
    with served_app(db_dsn, tmp_path, **env) as base:
        async with httpx.AsyncClient(base_url=base, headers=user.headers, timeout=30) as client:
            rid = (await client.post("/v1/reflections", json={"name": "r"})).json()["id"]
            files = {"file": ("me.wav", speech_wav(seed=5), "audio/wav")}
            attempt_id = (
                await client.post(f"/v1/reflections/{rid}/voice/clone", data={"consent": "true"}, files=files)
            ).json()["attemptId"]
            provider.faults.latency_s = 1.0
            stale = asyncio.create_task(process_by_hand(client, attempt_id, rid, "stale-worker"))
            await until_create_sent(provider)
            # The stale worker stalls past its lease (a long pause, a partition): it expires under it.
            sql.execute(
                "update voice_clone_attempts set lease_expires_at = now() - interval '1 second' where id = %s",
                (attempt_id,),
            )
            assert await process_by_hand(client, attempt_id, rid, "fresh-worker") == "ready"
            assert await stale == "lease_lost"
    [row] = attempts(sql)
    assert row["status"] == "ready"
    actors = {
        a
        for (a,) in sql.execute(
            "select actor from voice_clone_attempt_events where attempt_id = %s and to_state in ('verifying', 'ready')",
            (attempt_id,),
        ).fetchall()
    }
    assert actors == {"worker:fresh-worker"}
    assert len(provider.voices) == 1
