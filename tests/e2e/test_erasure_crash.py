"""An erasure carried out by real `voicegate worker` processes: one SIGKILLed between two items (the
`between_erasure_items` failpoint, right after the first item's outcome is written) is replaced by another, which
resumes at the next item: every provider voice of the user is deleted at the provider exactly once, every object
goes, and the erasure closes `done` with its receipt."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from devkit.db import create_user
from fakes.elevenlabs import ElevenVoice
from standins.dev_tokens import mint_service_key
from tests.conftest import server_dir
from tests.e2e.stack import Stack, running_stack
from tests.integration.api.conftest import JWT_SECRET

pytestmark = pytest.mark.timeout(120)
VOICES = 5
OBJECTS = 4


@pytest.fixture
def stack(db_dsn: str) -> Iterator[Stack]:
    with server_dir("erasure") as workdir, running_stack(db_dsn, Path(workdir)) as running:
        yield running


def seed(stack: Stack) -> tuple[uuid.UUID, list[str]]:
    """A user with `VOICES` ElevenLabs voices (each made by an attempt) and `OBJECTS` objects in their folder."""
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        user = create_user(conn)
        voices = []
        for n in range(VOICES):
            voice_id = f"erase-{uuid.uuid4().hex[:12]}"
            stack.fake.voices[voice_id] = ElevenVoice(voice_id, f"v{n}", None, {}, [])
            voice = conn.execute(
                "insert into voices (owner_id, name) values (%s, %s) returning id", (user, f"Voice {n}")
            ).fetchone()
            assert voice is not None
            conn.execute(
                "insert into voice_clone_attempts (owner_id, voice_id, provider, source, preview_required,"
                " provider_voice_id) values (%s, %s, 'elevenlabs', 'custom_voice_id', false, %s)",
                (user, voice[0], voice_id),
            )
            voices.append(voice_id)
    key = mint_service_key(JWT_SECRET)
    paths = [f"{user}/notes/{n}.wav" for n in range(OBJECTS)]
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        for path in paths:
            client.post(
                f"/storage/v1/object/voice-samples/{path}",
                content=b"RIFF" + bytes(64),
                headers={"Authorization": f"Bearer {key}", "apikey": key, "content-type": "audio/wav"},
            ).raise_for_status()
    return user, voices


def erasure(stack: Stack, user: uuid.UUID) -> dict[str, Any]:
    with psycopg.connect(stack.dsn, autocommit=True, row_factory=dict_row) as conn:
        row = conn.execute(
            "select e.*, (select count(*) from voicegate.erasure_items i where i.erasure_id = e.id"
            " and i.state = 'pending') as pending from voicegate.erasures e where e.user_id = %s",
            (user,),
        ).fetchone()
    assert row is not None
    return row


def objects_of(stack: Stack, user: uuid.UUID) -> int:
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        row = conn.execute("select count(*) from storage.objects where name like %s", (f"{user}/%",)).fetchone()
    assert row is not None
    n: int = row[0]
    return n


def test_a_worker_killed_between_two_items_is_finished_by_the_next(stack: Stack) -> None:
    user, voices = seed(stack)
    assert objects_of(stack, user) == OBJECTS
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        conn.execute("delete from auth.users where id = %s", (user,))

    doomed = stack.start_worker(VOICEGATE_FAILPOINTS="between_erasure_items")
    assert doomed.wait(60) == -signal.SIGKILL, stack.worker_log(0)
    halfway = erasure(stack, user)
    assert halfway["state"] == "working"
    assert halfway["pending"] == VOICES + OBJECTS - 1
    assert len(stack.fake.requests_to("DELETE", "/v1/voices/")) == 1

    survivor = stack.start_worker()
    stack.wait_for(lambda: erasure(stack, user)["state"] == "done", 60, "the erasure to finish after the crash")

    assert set(voices).isdisjoint(stack.fake.voices)
    assert len(stack.fake.requests_to("DELETE", "/v1/voices/")) == VOICES, "each voice deleted once"
    assert objects_of(stack, user) == 0
    receipt = erasure(stack, user)["receipt"]
    assert receipt["providerVoices"] == {"deleted": VOICES}
    assert receipt["objects"] == {"deleted": OBJECTS}
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(30) == 0, stack.worker_log(1)
