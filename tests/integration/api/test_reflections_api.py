"""`/v1/reflections` over HTTP: auth, validation, RLS scoping, voice state and the launch gate."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from devkit.db import Conn, one
from tests.integration.api.conftest import User
from tests.support import queue_messages, seed_attempt, seed_voice, transition

Client = AsyncTestClient  # type: ignore[type-arg]


async def new_reflection(client: Client, user: User, name: str = "Ada") -> dict[str, Any]:
    response = await client.post("/v1/reflections", json={"name": name}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def start_clone(sql: Conn, user: User, reflection_id: str) -> dict[str, Any]:
    """What the clone route will do: a voice (a name of its own, as each of a user's voices has) and an attempt,
    here by SQL as the service."""
    voice = seed_voice(sql, user.id, f"v {uuid.uuid4().hex[:8]}")
    return seed_attempt(sql, user.id, voice, uuid.UUID(reflection_id))


def advance(sql: Conn, attempt: dict[str, Any], *steps: dict[str, Any]) -> dict[str, Any]:
    for step in steps:
        attempt = transition(sql, attempt["id"], attempt["version"], **step)
    return attempt


TO_READY = (
    {"status": "processing", "changes": {"lease_owner": "w", "lease_seconds": 60}},
    {"status": "verifying", "lease_owner": "w", "changes": {"provider_voice_id": "pv-1"}},
    {"status": "ready", "lease_owner": "w"},
)
TO_HEARD = ({"preview": "generating"}, {"preview": "ready"})


async def test_create_list_and_get_are_scoped_to_the_caller(client: Client, make_user: Callable[[], User]) -> None:
    alice, bob = make_user(), make_user()
    created = await new_reflection(client, alice, "  Ada  ")
    assert created["name"] == "Ada"
    assert created["voice"]["cloneStatus"] == "none"

    listed = (await client.get("/v1/reflections", headers=alice.headers)).json()["reflections"]
    assert [r["id"] for r in listed] == [created["id"]]
    assert (await client.get("/v1/reflections", headers=bob.headers)).json() == {"reflections": []}
    assert (await client.get(f"/v1/reflections/{created['id']}", headers=alice.headers)).json() == created


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/reflections/{r}"),
        ("GET", "/v1/reflections/{r}/voice"),
        ("GET", "/v1/reflections/{r}/voice-clone-attempts"),
        ("GET", "/v1/reflections/{r}/voice-clone-attempts/{a}"),
        ("POST", "/v1/reflections/{r}/voice/preview/complete"),
        ("POST", "/v1/reflections/{r}/sessions"),
        ("POST", "/v1/reflections/{r}/voice/retry"),
        ("GET", "/api/voices/{v}"),
        ("DELETE", "/api/voices/{v}"),
    ],
)
async def test_another_user_gets_404_for_everything_of_the_owner(
    client: Client, make_user: Callable[[], User], sql: Conn, method: str, path: str
) -> None:
    alice, bob = make_user(), make_user()
    reflection = await new_reflection(client, alice)
    attempt = start_clone(sql, alice, reflection["id"])
    url = path.format(r=reflection["id"], a=attempt["id"], v=attempt["voice_id"])
    response = await client.request(method, url, headers=bob.headers)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "not_found"
    assert (await client.request("GET", url, headers=alice.headers)).status_code in {200, 405}


@pytest.mark.parametrize(
    ("headers", "detail_part"),
    [
        ({}, "Authorization"),
        ({"Authorization": "Basic abc"}, "Bearer"),
        ({"Authorization": "Bearer not-a-jwt"}, ""),
    ],
)
async def test_requests_without_a_valid_token_get_401(
    client: Client, headers: dict[str, str], detail_part: str
) -> None:
    response = await client.get("/v1/reflections", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "unauthorized"
    assert detail_part in body["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "\u001f"},  # whitespace to Python's strip, not to Postgres's btrim (found by the fuzzer: a 500)
        {"name": "x" * 201},
        {"name": "ok", "owner_id": str(uuid.uuid4())},
        {"name": 5},
    ],
)
async def test_invalid_bodies_get_400_and_write_nothing(
    client: Client, make_user: Callable[[], User], sql: Conn, body: dict[str, Any]
) -> None:
    alice = make_user()
    response = await client.post("/v1/reflections", json=body, headers=alice.headers)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    assert sql.execute("select count(*) from reflections").fetchone() == (0,)


async def test_a_blank_name_is_refused_in_words(client: Client, make_user: Callable[[], User]) -> None:
    response = await client.post("/v1/reflections", json={"name": " \t "}, headers=make_user().headers)
    assert (response.status_code, response.json()["detail"]) == (
        400,
        "name: must not be blank or contain a NUL character (U+0000)",
    )


async def test_launch_is_409_with_exact_reasons_until_ready_synced_and_previewed(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    reflection = await new_reflection(client, alice)
    rid = reflection["id"]

    async def launch_reasons() -> list[str]:
        response = await client.post(f"/v1/reflections/{rid}/sessions", headers=alice.headers)
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "launch_blocked"
        state = (await client.get(f"/v1/reflections/{rid}/voice", headers=alice.headers)).json()
        assert state["launchReady"] is False
        assert state["blockingReasons"] == response.json()["blockingReasons"]
        return response.json()["blockingReasons"]  # type: ignore[no-any-return]

    assert await launch_reasons() == ["no_voice"]
    attempt = start_clone(sql, alice, rid)
    assert await launch_reasons() == ["clone_not_ready", "runtime_not_synced", "preview_required"]
    attempt = advance(sql, attempt, *TO_READY)
    assert await launch_reasons() == ["runtime_not_synced", "preview_required"]
    attempt = advance(sql, attempt, {"runtime": "syncing"}, {"runtime": "synced"})
    assert await launch_reasons() == ["preview_required"]

    early = await client.post(f"/v1/reflections/{rid}/voice/preview/complete", headers=alice.headers)
    assert early.status_code == 409
    attempt = advance(sql, attempt, {"preview": "generating"}, {"preview": "ready"})
    completed = await client.post(f"/v1/reflections/{rid}/voice/preview/complete", headers=alice.headers)
    assert completed.status_code == 200, completed.text
    assert (completed.json()["previewStatus"], completed.json()["previewRequired"]) == ("completed", False)

    state = (await client.get(f"/v1/reflections/{rid}/voice", headers=alice.headers)).json()
    assert (state["launchReady"], state["blockingReasons"]) == (True, [])
    assert state["voice"]["previewStatus"] == "completed"
    launched = await client.post(f"/v1/reflections/{rid}/sessions", headers=alice.headers)
    assert launched.status_code == 201, launched.text
    assert launched.json()["attemptId"] == str(attempt["id"])
    event = one(sql, "select actor from voice_clone_attempt_events where to_state = 'completed'")
    assert event["actor"] == f"user:{alice.id}"


async def test_deleting_the_voice_closes_the_launch_gate(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    # Before: the gate stayed open on the deleted voice, and the launch, the session and the speech answered 500.
    alice = make_user()
    rid = (await new_reflection(client, alice))["id"]
    attempt = start_clone(sql, alice, rid)
    advance(sql, attempt, *TO_READY, {"runtime": "syncing"}, {"runtime": "synced"}, *TO_HEARD)
    heard = await client.post(f"/v1/reflections/{rid}/voice/preview/complete", headers=alice.headers)
    assert heard.status_code == 200, heard.text
    launched = await client.post(f"/v1/reflections/{rid}/sessions", headers=alice.headers)
    assert launched.status_code == 201, launched.text

    assert (await client.delete(f"/api/voices/{attempt['voice_id']}", headers=alice.headers)).status_code == 204

    state = (await client.get(f"/v1/reflections/{rid}/voice", headers=alice.headers)).json()
    assert (state["launchReady"], state["blockingReasons"]) == (False, ["voice_deleted"])
    session = await client.get(f"/v1/sessions/{launched.json()['id']}", headers=alice.headers)
    assert session.status_code == 200, session.text
    assert (session.json()["launchReady"], session.json()["blockingReasons"], session.json()["runtime"]) == (
        False,
        ["voice_deleted"],
        None,
    )
    for path, body in ((f"/v1/reflections/{rid}/sessions", None), (f"/v1/reflections/{rid}/speech", {"text": "Hi."})):
        refused = await client.post(path, json=body, headers=alice.headers)
        assert (refused.status_code, refused.json()["code"]) == (409, "launch_blocked"), refused.text
        assert refused.json()["blockingReasons"] == ["voice_deleted"]

    # A new clone on a live voice is what opens it again.
    start_clone(sql, alice, rid)
    state = (await client.get(f"/v1/reflections/{rid}/voice", headers=alice.headers)).json()
    assert state["blockingReasons"] == ["clone_not_ready", "runtime_not_synced", "preview_required"]


async def test_attempts_are_listed_newest_first_without_operator_fields(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    rid = (await new_reflection(client, alice))["id"]
    first = start_clone(sql, alice, rid)
    second = start_clone(sql, alice, rid)
    attempts = (await client.get(f"/v1/reflections/{rid}/voice-clone-attempts", headers=alice.headers)).json()
    assert [a["id"] for a in attempts["attempts"]] == [str(second["id"]), str(first["id"])]
    assert [a["status"] for a in attempts["attempts"]] == ["queued", "superseded"]
    assert "leaseOwner" not in attempts["attempts"][0]
    assert "enrolmentKey" not in attempts["attempts"][0]
    one_attempt = await client.get(f"/v1/reflections/{rid}/voice-clone-attempts/{first['id']}", headers=alice.headers)
    assert one_attempt.json()["isActive"] is False


async def test_voices_show_provider_metadata_once_ready_and_delete_softly(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    rid = (await new_reflection(client, alice))["id"]
    attempt = start_clone(sql, alice, rid)
    advance(
        sql,
        attempt,
        TO_READY[0],
        {
            "status": "verifying",
            "lease_owner": "w",
            "changes": {"provider_voice_id": "pv-7", "provider_target_model": "m", "provider_metadata": {"a": 1}},
        },
        TO_READY[2],
    )
    voices = (await client.get("/api/voices", headers=alice.headers)).json()["voices"]
    assert len(voices) == 1
    voice = voices[0]
    assert (voice["status"], voice["tts_provider"], voice["provider_voice_id"]) == ("ready", "local", "pv-7")
    assert voice["provider_metadata"] == {"a": 1}

    deleted = await client.delete(f"/api/voices/{voice['id']}", headers=alice.headers)
    assert deleted.status_code == 204
    assert (await client.get(f"/api/voices/{voice['id']}", headers=alice.headers)).status_code == 404
    assert (await client.get("/api/voices", headers=alice.headers)).json() == {"voices": []}
    assert (await client.delete(f"/api/voices/{voice['id']}", headers=alice.headers)).status_code == 404
    row = one(sql, "select deleted_at is not null as deleted from voices where id = %s", (voice["id"],))
    assert row["deleted"] is True


async def test_a_failed_clone_is_retried_as_a_new_queued_attempt(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    rid = (await new_reflection(client, alice))["id"]
    attempt = start_clone(sql, alice, rid)
    early = await client.post(f"/v1/reflections/{rid}/voice/retry", headers=alice.headers)
    assert (early.status_code, early.json()["code"]) == (409, "conflict")

    advance(sql, attempt, {"status": "failed", "changes": {"last_error_code": "bad_audio", "last_error_message": "x"}})
    retried = await client.post(f"/v1/reflections/{rid}/voice/retry", headers=alice.headers)
    assert retried.status_code == 202, retried.text
    new = retried.json()
    assert (new["status"], new["isActive"], new["voiceId"]) == ("queued", True, str(attempt["voice_id"]))
    old = one(sql, "select status, is_active from voice_clone_attempts where id = %s", (attempt["id"],))
    assert old == {"status": "failed", "is_active": False}
    state = (await client.get(f"/v1/reflections/{rid}/voice", headers=alice.headers)).json()
    assert (state["voice"]["attemptId"], state["voice"]["cloneStatus"]) == (new["id"], "queued")
    messages = [m["message"]["attemptId"] for m in queue_messages(sql, "voice_clone_process")]
    assert messages == [str(attempt["id"]), new["id"]]
