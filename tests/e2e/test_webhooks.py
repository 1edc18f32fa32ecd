"""Webhooks over the real stack: the app with its consumers, a receiver on 127.0.0.1 that verifies every
delivery with the `standardwebhooks` package. A receiver failing the first three deliveries gets the
fourth with the same `webhook-id`; one that is down past the last attempt leaves a dead letter that
`replay-dead-letters --apply` delivers, still with the same id; each failed delivery is logged as one line
naming the status or reason, without a traceback; each user's endpoint hears only that user's events, the
project's endpoint everyone's."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from backend.standard_webhooks.signing import new_secret
from devkit.audio_corpus import speech_wav
from devkit.db import Conn
from scripts.replay_dead_letters import main as replay_dead_letters
from tests.e2e.receiver import Receiver, receiving
from tests.integration.api.conftest import User

Client = AsyncTestClient  # type: ignore[type-arg]
pytestmark = pytest.mark.timeout(120)
#: Retries 1 s apart (the consumers' backoff rounds up to whole seconds), so a test sees several.
FAST_RETRIES = {"VOICEGATE_WEBHOOK_RETRY_BASE_SECONDS": "0.1"}


async def until(predicate: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Wait while the app's consumers (on this event loop) work, until `predicate` holds."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def endpoint(client: Client, user: User, receiver: Receiver, path: str, **body: Any) -> str:
    """Add `user`'s endpoint at `path` of the receiver, which learns its secret (shown this once)."""
    created = await client.post("/v1/webhooks", json={"url": receiver.url(path), **body}, headers=user.headers)
    assert created.status_code == 201, created.text
    receiver.secrets[path] = created.json()["secret"]
    endpoint_id: str = created.json()["id"]
    return endpoint_id


async def upload(client: Client, user: User, seed: int = 0) -> str:
    accepted = await client.post(
        "/api/v1/voice-samples",
        data={"consent": "true", "language": "en"},
        files={"file": ("me.wav", speech_wav(seed=seed), "audio/wav")},
        headers=user.headers,
    )
    assert accepted.status_code == 202, accepted.text
    sample_id: str = accepted.json()["sampleId"]
    return sample_id


def outbox(sql: Conn) -> list[dict[str, Any]]:
    return [row[0] for row in sql.execute("select message from pgmq.q_webhook_delivery")]


def failure_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the consumer logged of failed webhook deliveries (each failure, and the dead letter)."""
    consumer = ("queue_consumers.runtime", "queue_consumers.dead_letters")
    return [r for r in caplog.records if r.name in consumer and "webhook_delivery" in r.getMessage()]


def dead_letters(sql: Conn) -> list[dict[str, Any]]:
    return [
        row[0]
        for row in sql.execute(
            "select message from pgmq.q_voice_dead_letter where message ->> 'sourceQueue' = 'webhook_delivery'"
        )
    ]


async def test_a_failing_receiver_gets_the_same_event_until_it_answers(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    project_secret = new_secret()
    with receiving() as receiver:
        receiver.secrets["/project"] = project_secret
        client = await worker_client(
            VOICEGATE_WEBHOOK_URL=receiver.url("/project"),
            VOICEGATE_WEBHOOK_SECRET=project_secret,
            VOICEGATE_WEBHOOK_MAX_ATTEMPTS="5",
            **FAST_RETRIES,
        )
        user = make_user()
        await endpoint(client, user, receiver, "/user", events=["sample.ready"])
        receiver.failing["/user"] = 3

        sample_id = await upload(client, user)

        await until(lambda: len(receiver.at("/user")) == 4, "the fourth delivery")
        await until(lambda: outbox(sql) == [], "the delivered event to leave the queue")
        attempts = receiver.at("/user")
        assert [d.answered for d in attempts] == [500, 500, 500, 204]
        assert len({d.webhook_id for d in attempts}) == 1
        assert all(d.payload is not None for d in attempts), "every attempt verifies"
        assert len({d.body for d in attempts}) == 1
        # Each attempt is signed at its own time, at least a second (the backoff) after the one before.
        assert [d.timestamp for d in attempts] == sorted({d.timestamp for d in attempts})
        payload = attempts[0].payload
        assert payload is not None
        assert payload["type"] == "sample.ready"
        assert (payload["data"]["sampleId"], payload["data"]["ownerId"]) == (sample_id, str(user.id))
        (project,) = receiver.at("/project")
        assert (project.webhook_id, project.payload, project.answered) == (attempts[0].webhook_id, payload, 204)
        assert len(receiver.at("/user")) == 4, "nothing after the success"
        failed = failure_lines(caplog)
        assert [(r.levelno, r.exc_info) for r in failed] == [(logging.WARNING, None)] * 3, "one line each, no traceback"
        assert all(r.getMessage().endswith("(127.0.0.1): HTTP 500") for r in failed), [r.getMessage() for r in failed]


async def test_a_receiver_down_past_the_last_attempt_gets_the_event_when_replayed(
    worker_client: Callable[..., Any],
    make_user: Callable[[], User],
    sql: Conn,
    db_dsn: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    receiver = Receiver()
    receiver.start()
    client = await worker_client(VOICEGATE_WEBHOOK_MAX_ATTEMPTS="2", **FAST_RETRIES)
    user = make_user()
    endpoint_id = await endpoint(client, user, receiver, "/user", events=["sample.ready"])
    receiver.stop()
    secret = receiver.secrets["/user"]

    sample_id = await upload(client, user)

    await until(lambda: len(dead_letters(sql)) == 1, "the dead letter")
    (letter,) = dead_letters(sql)
    assert (letter["readCount"], letter["message"]["endpointId"]) == (2, endpoint_id)
    assert f"endpoint {endpoint_id}" in letter["error"]["message"]
    assert "ConnectError" in letter["error"]["message"]
    assert secret not in str(letter)
    assert outbox(sql) == []
    *failed, dead = failure_lines(caplog)
    assert [(r.levelno, r.exc_info) for r in failed] == [(logging.WARNING, None)] * 2, "one line each, no traceback"
    assert all(r.getMessage().endswith(f"endpoint {endpoint_id} (127.0.0.1): ConnectError") for r in failed)
    assert (dead.levelno, dead.exc_info, "dead-lettered" in dead.getMessage()) == (logging.ERROR, None, True)

    receiver.start()  # back, on the same port
    try:
        code = await asyncio.to_thread(
            replay_dead_letters, ["--database-url", db_dsn, "--no-progress", "--all", "--apply"]
        )
        assert code == 0

        await until(lambda: len(receiver.at("/user")) == 1, "the replayed delivery")
        (delivery,) = receiver.at("/user")
        assert (delivery.webhook_id, delivery.answered) == (letter["message"]["webhookId"], 204)
        assert delivery.payload is not None
        assert delivery.payload["data"]["sampleId"] == sample_id
        await until(lambda: outbox(sql) == [], "the replayed event to leave the queue")
        assert dead_letters(sql) == []
    finally:
        receiver.stop()


async def test_each_endpoint_hears_only_its_owners_events(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    project_secret = new_secret()
    with receiving() as receiver:
        receiver.secrets["/project"] = project_secret
        client = await worker_client(
            VOICEGATE_WEBHOOK_URL=receiver.url("/project"), VOICEGATE_WEBHOOK_SECRET=project_secret
        )
        alice, bob = make_user(), make_user()
        await endpoint(client, alice, receiver, "/alice")
        await endpoint(client, bob, receiver, "/bob")

        alices_sample = await upload(client, alice)
        job = await client.post(
            "/api/v1/clone", json={"sampleId": alices_sample, "text": "Hello there."}, headers=alice.headers
        )
        assert job.status_code == 202, job.text
        await upload(client, bob, seed=1)

        def heard(path: str) -> list[tuple[str, str]]:
            return sorted(
                (d.payload["type"], d.payload["data"]["ownerId"]) for d in receiver.at(path) if d.payload is not None
            )

        alices = [
            ("sample.ready", str(alice.id)),
            ("synthesis.succeeded", str(alice.id)),
            ("voice.ready", str(alice.id)),
        ]
        bobs = [("sample.ready", str(bob.id))]
        await until(lambda: heard("/project") == sorted(alices + bobs), "every event at the project's endpoint")
        await until(lambda: outbox(sql) == [], "every delivery")
        assert heard("/alice") == alices
        assert heard("/bob") == bobs
        assert {d.answered for d in receiver.deliveries} == {204}
        project_ids = {d.webhook_id for d in receiver.at("/project")}
        assert {d.webhook_id for d in receiver.at("/alice")} | {
            d.webhook_id for d in receiver.at("/bob")
        } == project_ids
