"""`GET /api/v1/voice-samples`: the caller's samples, newest first, as `/{id}/status` shows each; nobody
else's; a deleted sample leaves the list at once; at most `LIST_LIMIT`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.testing import AsyncTestClient

from backend.samples.service import LIST_LIMIT
from tests.e2e.conftest import speech_wav
from tests.integration.api.conftest import User
from tests.support import Conn

Client = AsyncTestClient  # type: ignore[type-arg]


async def upload(client: Client, user: User) -> str:
    response = await client.post(
        "/api/v1/voice-samples",
        data={"consent": "true"},
        files={"file": ("me.wav", speech_wav(), "audio/wav")},
        headers=user.headers,
    )
    assert response.status_code == 202, response.text
    sample_id: str = response.json()["sampleId"]
    return sample_id


async def listed(client: Client, user: User) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/voice-samples", headers=user.headers)
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["samples"]
    samples: list[dict[str, Any]] = response.json()["samples"]
    return samples


async def test_the_list_holds_the_callers_samples_newest_first(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user, other = make_user(), make_user()
    first, second = await upload(client, user), await upload(client, user)
    theirs = await upload(client, other)
    # Both uploads may share a timestamp's precision; make the order unambiguous.
    sql.execute("update voice_samples set created_at = created_at - interval '1 minute' where id = %s", (first,))

    mine = await listed(client, user)
    assert [s["sampleId"] for s in mine] == [second, first]
    status = (await client.get(f"/api/v1/voice-samples/{second}/status", headers=user.headers)).json()
    assert mine[0] == status, "each item is what the status route answers for that sample"
    assert [s["sampleId"] for s in await listed(client, other)] == [theirs]

    assert (await client.delete(f"/api/v1/voice-samples/{second}", headers=user.headers)).status_code == 204
    assert [s["sampleId"] for s in await listed(client, user)] == [first]


async def test_the_list_needs_a_token_and_is_capped(client: Client, make_user: Callable[[], User], sql: Conn) -> None:
    assert (await client.get("/api/v1/voice-samples")).status_code == 401
    user = make_user()
    assert await listed(client, user) == []
    # Rows straight into the table: the cap is about the query, not about uploading 200 files.
    sql.execute(
        "insert into voice_consents (owner_id, subject_name, consent_text_version) values (%s, 'me', 'test')",
        (user.id,),
    )
    sql.execute(
        """insert into voice_samples (owner_id, consent_id, bucket_id, object_path, size_bytes, provider, status)
           select %(owner)s, (select id from voice_consents where owner_id = %(owner)s), 'voice-samples',
                  %(owner)s || '/samples/' || n || '/original', 1000, 'local', 'pending'
             from generate_series(1, %(count)s) as n""",
        {"owner": str(user.id), "count": LIST_LIMIT + 5},
    )
    assert len(await listed(client, user)) == LIST_LIMIT
