"""A validly signed, unexpired token whose user is gone (deleted from auth.users, as Supabase Auth's admin deleteUser
does, or soft-deleted) answers 401 on every route that uses the database as the user, and on those where the
service acts for them; it writes nothing. Before, the creates met a foreign key to auth.users: a 500."""

from __future__ import annotations

from collections.abc import Callable

from litestar.testing import AsyncTestClient

from devkit.db import Conn, one
from fakes.audio import tone_wav
from tests.integration.api.conftest import User

Client = AsyncTestClient  # type: ignore[type-arg]
WAV = tone_wav(4.0, 24000)


async def _creates(client: Client, user: User) -> dict[str, int]:
    """Each create route's status for `user`."""
    answers = {
        "reflection": await client.post("/v1/reflections", json={"name": "Mine"}, headers=user.headers),
        "webhook": await client.post(
            "/v1/webhooks", json={"url": "https://hooks.example.com/voicegate"}, headers=user.headers
        ),
        "upload-url": await client.post(
            "/api/clone/upload-url", json={"name": "Ada", "consent": True}, headers=user.headers
        ),
        "consent": await client.post("/api/v1/consents", json={"subjectName": "Ada"}, headers=user.headers),
        "voice-sample": await client.post(
            "/api/v1/voice-samples",
            data={"consent": "true"},
            files={"file": ("me.wav", WAV, "audio/wav")},
            headers=user.headers,
        ),
    }
    for answer in answers.values():
        if answer.status_code == 401:
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == "unauthorized"
    return {name: answer.status_code for name, answer in answers.items()}


def _rows(sql: Conn, user: User) -> int:
    counted: int = one(
        sql,
        "select (select count(*) from reflections where owner_id = %(u)s)"
        " + (select count(*) from webhook_endpoints where owner_id = %(u)s)"
        " + (select count(*) from voices where owner_id = %(u)s)"
        " + (select count(*) from voice_consents where owner_id = %(u)s)"
        " + (select count(*) from voice_samples where owner_id = %(u)s)"
        " + (select count(*) from voicegate.user_creates where owner_id = %(u)s) as n",
        {"u": user.id},
    )["n"]
    return counted


async def test_a_token_of_a_deleted_user_is_a_401_everywhere(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user, other = make_user(), make_user()
    sql.execute("delete from auth.users where id = %s", (user.id,))

    assert await _creates(client, user) == dict.fromkeys(
        ("reflection", "webhook", "upload-url", "consent", "voice-sample"), 401
    )
    reads = [
        await client.get(path, headers=user.headers)
        for path in ("/v1/reflections", "/api/voices", "/v1/webhooks", "/api/v1/usage")
    ]
    assert [answer.status_code for answer in reads] == [401, 401, 401, 401], [answer.text for answer in reads]
    assert _rows(sql, user) == 0
    # Everyone else goes on as before.
    assert (await client.get("/v1/reflections", headers=other.headers)).status_code == 200
    assert (await client.post("/v1/reflections", json={"name": "Theirs"}, headers=other.headers)).status_code == 201


async def test_a_token_of_a_soft_deleted_user_is_a_401_everywhere(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    """Soft-deleted (deleteUser's shouldSoftDelete): the row stays, with `deleted_at`, and satisfies every foreign
    key; every request as the user, and every create the service makes for them, is refused all the same."""
    user = make_user()
    sql.execute("update auth.users set deleted_at = now() where id = %s", (user.id,))

    reads = [
        await client.get(path, headers=user.headers)
        for path in ("/v1/reflections", "/api/voices", "/v1/webhooks", "/api/v1/usage")
    ]

    assert [answer.status_code for answer in reads] == [401, 401, 401, 401]
    assert await _creates(client, user) == dict.fromkeys(
        ("reflection", "webhook", "upload-url", "consent", "voice-sample"), 401
    )
    assert _rows(sql, user) == 0


async def test_the_service_acting_for_a_user_who_is_gone_is_a_401(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    """The webhook create writes as the service, never opening a user transaction first: the foreign key to
    auth.users it meets is the caller's token having outlived them."""
    user = make_user()
    sql.execute("delete from auth.users where id = %s", (user.id,))

    answer = await client.post("/v1/webhooks", json={"url": "https://hooks.example.com/x"}, headers=user.headers)

    assert (answer.status_code, answer.json()["detail"]) == (
        401,
        "The account this token was issued for no longer exists.",
    )
    # An Idempotency-Key is claimed as the service, for the caller, before the create runs.
    keyed = await client.post(
        "/v1/reflections", json={"name": "Mine"}, headers={**user.headers, "Idempotency-Key": "k-1"}
    )
    assert keyed.status_code == 401, keyed.text
    assert sql.execute("select count(*) from voicegate.idempotency_keys").fetchone() == (0,)
