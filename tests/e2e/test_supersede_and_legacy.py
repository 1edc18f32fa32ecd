"""A late result of a superseded attempt is recorded on it and never reaches the mirror or launch; a
legacy outbox row becomes an attempt (accepted, not primary); the maintenance sweep requeues a queued
attempt whose message was lost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.db.pool import create_pool
from backend.db.units import Database
from backend.settings import settings_from_env
from devkit.audio_corpus import speech_wav
from devkit.db import Conn, one
from fakes import ElevenLabsFake, serve
from queue_consumers.maintenance import SweepReport, sweep
from tests.e2e.conftest import elevenlabs_env, process_by_hand, served_app, until_create_sent
from tests.integration.api.conftest import User
from tests.support import mirror, queue_messages

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def fake() -> Iterator[tuple[ElevenLabsFake, str]]:
    provider = ElevenLabsFake(max_voices=1000)
    with serve(provider) as url:
        yield provider, url


async def test_a_late_result_of_a_superseded_attempt_is_recorded_but_not_mirrored(
    db_dsn: str, tmp_path: Path, fake: tuple[ElevenLabsFake, str], make_user: Callable[[], User], sql: Conn
) -> None:
    provider, url = fake
    env = elevenlabs_env(provider, url)
    user = make_user()
    with served_app(db_dsn, tmp_path, **env) as base:
        async with httpx.AsyncClient(base_url=base, headers=user.headers, timeout=30) as client:
            rid = (await client.post("/v1/reflections", json={"name": "r"})).json()["id"]
            files = {"file": ("me.wav", speech_wav(seed=3), "audio/wav")}
            first = await client.post(f"/v1/reflections/{rid}/voice/clone", data={"consent": "true"}, files=files)
            old_id = first.json()["attemptId"]

            provider.faults.latency_s = 0.5
            working = asyncio.create_task(process_by_hand(client, old_id, rid, "w1"))
            await until_create_sent(provider)
            # The user starts over while the provider is still creating the first voice.
            files = {"file": ("me.wav", speech_wav(seed=4), "audio/wav")}
            second = await client.post(f"/v1/reflections/{rid}/voice/clone", data={"consent": "true"}, files=files)
            new_id = second.json()["attemptId"]
            assert await working == "ready"
            blocked = await client.post(f"/v1/reflections/{rid}/sessions")
    assert blocked.status_code == 409

    old = one(sql, "select * from voice_clone_attempts where id = %s", (old_id,))
    assert (old["status"], old["is_active"]) == ("ready", False)
    assert old["provider_voice_id"] in provider.voices  # recorded, so reconcile never sees an orphan
    assert old["runtime_status"] == "pending"  # never synced: nobody will use it
    state = mirror(sql, uuid.UUID(rid))
    assert (state["attemptId"], state["cloneStatus"]) == (new_id, "queued")
    late = sql.execute(
        "select detail from voice_clone_attempt_events where attempt_id = %s and to_state = 'ready'", (old_id,)
    ).fetchone()
    assert late is not None
    assert late[0]["late"] is True


async def test_a_legacy_outbox_row_becomes_an_attempt_but_never_displaces_a_live_one(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    client = await worker_client(consumers=False)
    user = make_user()
    rid = (await client.post("/v1/reflections", json={"name": "r"}, headers=user.headers)).json()["id"]
    consent = one(
        sql,
        "insert into voice_consents (owner_id, subject_name, consent_text_version) values (%s, 'x', 'v1') returning id",
        (user.id,),
    )["id"]
    voice = one(
        sql,
        "insert into voices (owner_id, name, consent_id) values (%s, 'legacy', %s) returning id",
        (user.id, consent),
    )["id"]
    row = one(
        sql,
        "insert into voice_clone_outbox (owner_id, voice_id, reflection_id, provider)"
        " values (%s, %s, %s, 'local') returning status, attempt_id",
        (user.id, voice, rid),
    )
    assert row["status"] == "accepted"
    attempt = one(sql, "select source, is_active from voice_clone_attempts where id = %s", (row["attempt_id"],))
    assert attempt == {"source": "legacy_outbox", "is_active": True}
    assert [m["message"]["attemptId"] for m in queue_messages(sql, "voice_clone_process")] == [str(row["attempt_id"])]
    assert mirror(sql, uuid.UUID(rid))["attemptId"] == str(row["attempt_id"])

    again = one(
        sql,
        "insert into voice_clone_outbox (owner_id, voice_id, reflection_id, provider)"
        " values (%s, %s, %s, 'local') returning status, attempt_id, skip_reason",
        (user.id, voice, rid),
    )
    assert (again["status"], again["attempt_id"]) == ("skipped", None)
    assert again["skip_reason"] == "the reflection already has a live attempt"
    assert one(sql, "select count(*) as n from voice_clone_attempts")["n"] == 1


async def test_the_sweep_requeues_a_queued_attempt_whose_message_was_lost(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn, db_dsn: str
) -> None:
    client = await worker_client(consumers=False)
    user = make_user()
    rid = (await client.post("/v1/reflections", json={"name": "r"}, headers=user.headers)).json()["id"]
    files = {"file": ("me.wav", speech_wav(), "audio/wav")}
    accepted = await client.post(
        f"/v1/reflections/{rid}/voice/clone", data={"consent": "true"}, files=files, headers=user.headers
    )
    attempt_id = accepted.json()["attemptId"]
    sql.execute("delete from pgmq.q_voice_clone_process")
    sql.execute(
        "update voice_clone_attempts set updated_at = now() - interval '1 hour', created_at = now() - interval '1 hour'"
    )
    settings = settings_from_env({"VOICEGATE_STALE_AFTER": "1"})
    pool = create_pool(db_dsn, settings.pool_limits)
    await pool.open(wait=True)
    try:
        assert await sweep(settings, Database(pool), client.app.state.storage) == SweepReport(requeued=1, purged=0)
        assert [m["message"]["attemptId"] for m in queue_messages(sql, "voice_clone_process")] == [attempt_id]
        assert await sweep(settings, Database(pool), client.app.state.storage) == SweepReport(requeued=0, purged=0)
    finally:
        await pool.close()
