"""`GET /api/v1/attempts/{id}`: any of the caller's attempts, made with a reflection or without one, in the
shape the reflection's attempt route gives, and nobody else's (RLS: a 404, as for an id that does not exist)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from litestar.testing import AsyncTestClient

from devkit.db import Conn, one
from tests.integration.api.conftest import User
from tests.integration.api.test_reflections_api import TO_READY, advance, new_reflection, start_clone
from tests.support import seed_attempt

Client = AsyncTestClient  # type: ignore[type-arg]


async def test_an_attempt_without_a_reflection_is_its_owners_alone(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice, bob = make_user(), make_user()
    voice = one(sql, "insert into voices (owner_id, name) values (%s, 'v') returning id", (alice.id,))["id"]
    attempt = advance(sql, seed_attempt(sql, alice.id, voice, None), *TO_READY)

    response = await client.get(f"/api/v1/attempts/{attempt['id']}", headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["voiceId"], body["reflectionId"]) == (str(attempt["id"]), str(voice), None)
    assert (body["status"], body["runtimeStatus"], body["providerVoiceId"]) == ("ready", "pending", "pv-1")
    assert "leaseOwner" not in body
    assert "enrolmentKey" not in body

    for caller, attempt_id in ((bob, attempt["id"]), (alice, uuid.uuid4())):
        missing = await client.get(f"/api/v1/attempts/{attempt_id}", headers=caller.headers)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert missing.json()["code"] == "not_found"
    assert (await client.get(f"/api/v1/attempts/{attempt['id']}")).status_code == 401


async def test_a_reflections_attempt_reads_as_the_reflection_route_gives_it(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    reflection = await new_reflection(client, alice)
    attempt = start_clone(sql, alice, reflection["id"])

    by_reflection = await client.get(
        f"/v1/reflections/{reflection['id']}/voice-clone-attempts/{attempt['id']}", headers=alice.headers
    )
    by_id = await client.get(f"/api/v1/attempts/{attempt['id']}", headers=alice.headers)
    assert by_reflection.status_code == by_id.status_code == 200
    assert by_id.json() == by_reflection.json()
    assert by_id.json()["reflectionId"] == reflection["id"]
