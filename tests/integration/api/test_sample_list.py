"""`GET /api/v1/voice-samples`: the caller's samples, newest first, as `/{id}/status` shows each; nobody
else's; a deleted sample leaves the list at once; at most `LIST_LIMIT`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from litestar.testing import AsyncTestClient

from backend.samples.upload import LIST_LIMIT
from devkit.audio_corpus import speech_wav
from devkit.db import Conn
from tests.integration.api.conftest import User

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


async def test_a_delete_waits_for_a_worker_touching_the_sample_instead_of_refusing(
    client: Client, make_user: Callable[[], User], sql: Conn, db_dsn: str
) -> None:
    """A worker that updates the sample (its voice, its status) holds the row for a moment; the owner's
    delete waits for it and goes, rather than answering 409 "another request is deleting this sample"
    (the studio page's Delete failed so under load). Held past half a second, it is a 409 that says so."""
    user = make_user()
    sample_id = await upload(client, user)
    with psycopg.connect(db_dsn) as worker:
        worker.execute("update voice_samples set voice_id = voice_id where id = %s", (sample_id,))
        held = await client.delete(f"/api/v1/voice-samples/{sample_id}", headers=user.headers)
        assert held.status_code == 409, held.text
        assert held.json()["detail"] == "The sample is being processed; try again in a moment."
        assert sql.execute("select 1 from voice_samples where id = %s", (sample_id,)).fetchone() == (1,)

    seen: list[bool] = []

    def worker_commits_once_the_delete_waits(worker: Conn) -> None:
        # The test client blocks this loop while it serves a request: the worker's side runs in a thread.
        deadline = time.monotonic() + 30
        waiting = "select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like '%delete from%'"
        while not (found := sql.execute(waiting).fetchone()) and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.append(found is not None)
        worker.commit()

    with psycopg.connect(db_dsn) as worker:
        worker.execute("update voice_samples set voice_id = voice_id where id = %s", (sample_id,))
        thread = threading.Thread(target=worker_commits_once_the_delete_waits, args=(worker,))
        thread.start()
        try:
            response = await client.delete(f"/api/v1/voice-samples/{sample_id}", headers=user.headers)
        finally:
            thread.join(35)
    assert seen == [True], "the delete waited on the worker's lock"
    assert response.status_code == 204, response.text
    assert sql.execute("select 1 from voice_samples where id = %s", (sample_id,)).fetchone() is None
    assert await listed(client, user) == []
