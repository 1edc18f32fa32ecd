"""Spend, as a client meets it (docs/limits.md, "Spend"): `GET /api/v1/usage` reads the caller's own ledger this
window; a job whose text would pass what is left of VOICEGATE_USER_CHARACTERS is refused 429 `quota_exceeded`
with Retry-After the seconds until the window resets, writing nothing; the routes that spend answer the
`RateLimit-Policy` and `RateLimit` fields on 2xx and 429 alike; VOICEGATE_USER_QUEUED_JOBS holds exactly under a
burst sent to two API processes at once; once the database has refused a user's job for either, the process answers
their next ones itself for a moment, before the database and before their bodies are read; a speech stream that
reaches the quota ends cleanly at it."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
import wave
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.settings import settings_from_env
from backend.text import sentences
from devkit.db import Conn, one
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.integration.api.conftest import JWT_SECRET, User
from tests.integration.api.test_language_refusals import local_voice, stored_local_voice
from tests.integration.api.test_user_limits import two_processes

Client = AsyncTestClient  # type: ignore[type-arg]


@asynccontextmanager
async def app_with(db_dsn: str, tmp_path: Path, **env: str) -> AsyncIterator[Client]:
    settings = settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path), **env})
    async with AsyncTestClient(
        app=create_app(with_auth_keys(settings, {"SUPABASE_JWT_SECRET": JWT_SECRET}), db_dsn, embedded=EMBEDDED)
    ) as c:
        yield c


def english_voice(sql: Conn, owner: uuid.UUID) -> str:
    provider_voice_id = f"local-{uuid.uuid4().hex[:8]}"
    voice_id = local_voice(sql, owner, "en", provider_voice_id)
    stored_local_voice(sql, provider_voice_id, "en")
    return voice_id


def spend(sql: Conn, owner: uuid.UUID, characters: int, *, provider: str = "local", kind: str = "job") -> None:
    """`characters` reserved for `owner` as a worker reserves a call's, at the default quota and window."""
    row = one(
        sql,
        "select * from voicegate.reserve_usage(%s, %s, null, %s, %s, '0', %s, 200000, 86400)",
        (owner, provider, kind, uuid.uuid4(), characters),
    )
    assert row["reserved"]


def rate_limit(headers: Any) -> tuple[str, dict[str, int]]:
    """The `RateLimit-Policy` field as sent, and the `RateLimit` field's members."""
    found = re.fullmatch(r'"characters";r=(\d+);t=(\d+)', headers["ratelimit"])
    assert found is not None, headers["ratelimit"]
    return headers["ratelimit-policy"], {"r": int(found[1]), "t": int(found[2])}


def jobs(sql: Conn, owner: uuid.UUID) -> int:
    return int(one(sql, "select count(*) as n from synthesis_jobs where owner_id = %s", (owner,))["n"])


async def test_usage_reads_the_callers_own_ledger_this_window(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice, bob = make_user(), make_user()
    empty = await client.get("/api/v1/usage", headers=alice.headers)
    assert empty.status_code == 200, empty.text
    assert (empty.json()["characters"], empty.json()["remaining"], empty.json()["byProvider"]) == (0, 200000, [])

    spend(sql, alice.id, 120)
    spend(sql, alice.id, 30, kind="stream")
    spend(sql, alice.id, 50, provider="elevenlabs")
    sql.execute("update voicegate.usage_events set audio_seconds = 2.5 where owner_id = %s", (alice.id,))
    spend(sql, bob.id, 999)

    answer = await client.get("/api/v1/usage", headers=alice.headers)

    assert answer.status_code == 200, answer.text
    usage = answer.json()
    assert (usage["characters"], usage["limit"], usage["remaining"]) == (200, 200000, 199800)
    assert usage["windowSeconds"] == 86400
    assert usage["audioSeconds"] == 7.5
    start, resets = datetime.fromisoformat(usage["windowStart"]), datetime.fromisoformat(usage["resetsAt"])
    assert (resets - start).total_seconds() == 86400
    assert start.timestamp() % 86400 == 0, "fixed windows: each UTC day at the default"
    assert usage["byProvider"] == [
        {"provider": "elevenlabs", "kind": "job", "characters": 50, "audioSeconds": 2.5, "calls": 1},
        {"provider": "local", "kind": "job", "characters": 120, "audioSeconds": 2.5, "calls": 1},
        {"provider": "local", "kind": "stream", "characters": 30, "audioSeconds": 2.5, "calls": 1},
    ]
    assert (await client.get("/api/v1/usage")).status_code == 401


async def test_a_job_past_the_quota_is_refused_until_the_window_resets_and_every_answer_says_what_is_left(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    alice, bob = make_user(), make_user()
    async with app_with(db_dsn, tmp_path, VOICEGATE_USER_CHARACTERS="100") as client:
        voice = english_voice(sql, alice.id)
        accepted = await client.post(
            "/api/v1/clone", json={"voiceId": voice, "text": "Hello there."}, headers=alice.headers
        )
        assert accepted.status_code == 202, accepted.text
        policy, left = rate_limit(accepted.headers)
        assert policy == '"characters";q=100;w=86400'
        assert left["r"] == 100
        assert 0 < left["t"] <= 86400

        spend_quota = one(
            sql,
            "select * from voicegate.reserve_usage(%s, 'local', null, 'job', %s, '0', 70, 100, 86400)",
            (alice.id, uuid.uuid4()),
        )
        assert spend_quota["reserved"]
        before = jobs(sql, alice.id)
        text = "This text is more than thirty characters long."
        refused = await client.post("/api/v1/clone", json={"voiceId": voice, "text": text}, headers=alice.headers)

        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "quota_exceeded"
        policy, left = rate_limit(refused.headers)
        assert (policy, left["r"]) == ('"characters";q=100;w=86400', 30)
        assert int(refused.headers["retry-after"]) == left["t"]
        assert jobs(sql, alice.id) == before, "a refused job writes nothing"
        # What is left still fits.
        fits = await client.post(
            "/api/v1/clone", json={"voiceId": voice, "text": "Thirty is enough."}, headers=alice.headers
        )
        assert fits.status_code == 202, fits.text
        # Another user is not held back.
        bobs = await client.post(
            "/api/v1/clone", json={"voiceId": english_voice(sql, bob.id), "text": text}, headers=bob.headers
        )
        assert bobs.status_code == 202, bobs.text

        # The next window: the quota is back.
        sql.execute(
            "update voicegate.user_usage set window_start = window_start - interval '1 day' where owner_id = %s",
            (alice.id,),
        )
        again = await client.post("/api/v1/clone", json={"voiceId": voice, "text": text}, headers=alice.headers)
        assert again.status_code == 202, again.text
        assert rate_limit(again.headers)[1]["r"] == 100


async def test_queued_jobs_stop_at_the_bound_under_a_burst_sent_to_two_processes(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    cap, burst = 5, 32
    alice = make_user()
    voice = english_voice(sql, alice.id)
    async with two_processes(db_dsn, tmp_path, VOICEGATE_USER_QUEUED_JOBS=str(cap)) as clients:
        answers = await asyncio.gather(
            *(
                clients[n % 2].post(
                    "/api/v1/clone", json={"voiceId": voice, "text": f"Job {n}."}, headers=alice.headers
                )
                for n in range(burst)
            )
        )
        statuses = Counter((a.status_code, a.json().get("code")) for a in answers)
        # Exactly the bound is queued, and every other request refused 429: for the bound, or (on a loaded machine)
        # because its turn in the user's line to the database did not come in time, which a retry meets alike.
        assert statuses[(202, None)] == cap, statuses
        assert statuses[(429, "jobs_limited")] + statuses[(429, "too_many_requests")] == burst - cap, statuses
        assert statuses[(429, "jobs_limited")] >= 1, statuses
        assert jobs(sql, alice.id) == cap
        refused = next(a for a in answers if a.status_code == 429 and a.json()["code"] == "jobs_limited")
        assert refused.headers["retry-after"] == "5"
        assert "ratelimit" in refused.headers

        # One ends: one more may be queued, once the refusals each process remembers (for up to a second) lapse.
        sql.execute(
            "update synthesis_jobs set status = 'failed', finished_at = now() where id ="
            " (select id from synthesis_jobs where owner_id = %s limit 1)",
            (alice.id,),
        )
        more = await until_accepted(clients[0], alice, {"voiceId": voice, "text": "One more."}, within=5)
        assert more.status_code == 202, more.text
        assert jobs(sql, alice.id) == cap + 1


async def until_accepted(client: Any, user: User, body: dict[str, Any], *, within: float) -> Any:
    """`user`'s job posted again (as a client waiting out Retry-After would, sooner) until it is accepted, or the
    last answer after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        answer = await client.post("/api/v1/clone", json=body, headers=user.headers)
        if answer.status_code == 202 or asyncio.get_running_loop().time() > deadline:
            return answer
        assert (answer.status_code, answer.json()["code"]) == (429, "jobs_limited"), answer.text
        await asyncio.sleep(0.05)


async def test_a_refused_job_is_refused_again_from_memory_before_the_database_and_before_its_body(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    cap = 2
    alice = make_user()
    voice = english_voice(sql, alice.id)
    job = {"voiceId": voice, "text": "Hello there."}
    async with two_processes(db_dsn, tmp_path, VOICEGATE_USER_QUEUED_JOBS=str(cap)) as (client, _):
        for _ in range(cap):
            assert (await client.post("/api/v1/clone", json=job, headers=alice.headers)).status_code == 202
        with psycopg.connect(db_dsn) as holder:
            refused = await client.post("/api/v1/clone", json=job, headers=alice.headers)
            assert (refused.status_code, refused.json()["code"]) == (429, "jobs_limited"), refused.text
            # A job that reached the database now would wait for this lock (0.8 s) and be answered "busy". All
            # asked at once, within the second the refusal is remembered for.
            holder.execute("select voicegate.lock_user_jobs(%s)", (alice.id,))
            again, unread, keyed = await asyncio.gather(
                client.post("/api/v1/clone", json=job, headers=alice.headers),
                client.post(
                    "/api/v1/clone",
                    content=b'{"voiceId": ',
                    headers={**alice.headers, "Content-Type": "application/json"},
                ),
                client.post("/api/v1/clone", json=job, headers={**alice.headers, "Idempotency-Key": str(uuid.uuid4())}),
            )
            holder.rollback()

    for answer in (again, unread, keyed):
        assert (answer.status_code, answer.json()["code"]) == (429, "jobs_limited"), answer.text
        assert answer.json()["detail"] == refused.json()["detail"]
        assert answer.headers["retry-after"] == "5"
        assert rate_limit(answer.headers)[1]["r"] == 200000
    assert jobs(sql, alice.id) == cap


async def test_a_quota_refusal_is_remembered_for_texts_past_what_was_left(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    voice = english_voice(sql, alice.id)
    spend(sql, alice.id, 200_000 - 10)
    async with two_processes(db_dsn, tmp_path) as (client, _):
        long = {"voiceId": voice, "text": "This text is more than ten characters long."}
        with psycopg.connect(db_dsn) as holder:
            refused = await client.post("/api/v1/clone", json=long, headers=alice.headers)
            assert (refused.status_code, refused.json()["code"]) == (429, "quota_exceeded"), refused.text
            holder.execute("select voicegate.lock_user_jobs(%s)", (alice.id,))
            again, short = await asyncio.gather(
                client.post("/api/v1/clone", json=long, headers=alice.headers),
                # What was left still fits this one: the database is asked, and keeps it waiting on the lock.
                client.post("/api/v1/clone", json={"voiceId": voice, "text": "Hi."}, headers=alice.headers),
            )
            holder.rollback()
        fits = await client.post("/api/v1/clone", json={"voiceId": voice, "text": "Hi."}, headers=alice.headers)

    assert (again.status_code, again.json()["code"]) == (429, "quota_exceeded"), again.text
    assert rate_limit(again.headers)[1]["r"] == 10
    assert 0 < int(again.headers["retry-after"]) <= 86400
    assert (short.status_code, short.json()["code"]) == (429, "too_many_requests"), short.text
    assert fits.status_code == 202, fits.text


def wav_seconds(body: bytes) -> float:
    with wave.open(io.BytesIO(body)) as wav:
        return wav.getnframes() / wav.getframerate()


async def test_a_stream_that_reaches_the_quota_ends_cleanly_after_its_last_whole_sentence(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    text = "Hello there. This is the second sentence. And this one is the third."
    said = sentences(text)
    assert len(said) == 3
    quota = len(said[0]) + len(said[1])  # the third does not fit
    alice = make_user()
    async with app_with(db_dsn, tmp_path, VOICEGATE_USER_CHARACTERS=str(quota)) as client:
        voice = english_voice(sql, alice.id)
        streamed = await client.post(
            "/api/v1/speech", json={"voiceId": voice, "text": text, "format": "wav"}, headers=alice.headers
        )
        assert streamed.status_code == 200, streamed.text
        assert rate_limit(streamed.headers)[0] == f'"characters";q={quota};w=86400'
        # The answer says, as it opens, that the quota will cut it: two sentences of three (it said nothing).
        assert streamed.headers["voicegate-quota-cut"] == "2/3"
        assert wav_seconds(streamed.content) > 0.5, "the audio made is whole"
        stream = one(
            sql,
            "select id, characters, outcome, error_code, audio_ms from speech_streams where owner_id = %s",
            (alice.id,),
        )
        assert (stream["characters"], stream["error_code"]) == (quota, "quota_exceeded")
        ledger = sql.execute(
            "select call_key, characters, audio_seconds from voicegate.usage_events"
            " where work_id = %s order by call_key",
            (stream["id"],),
        ).fetchall()
        assert [(row[0], row[1]) for row in ledger] == [("0", len(said[0])), ("1", len(said[1]))]
        assert all(row[2] > 0 for row in ledger)
        assert abs(sum(row[2] for row in ledger) * 1000 - stream["audio_ms"]) < 500  # the pause between is not spoken

        # Nothing left: the next stream is refused before it opens, and writes no stream.
        refused = await client.post("/api/v1/speech", json={"voiceId": voice, "text": "Hi."}, headers=alice.headers)
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "quota_exceeded"
        assert rate_limit(refused.headers)[1]["r"] == 0
        assert one(sql, "select count(*) as n from speech_streams where owner_id = %s", (alice.id,))["n"] == 1


async def test_streams_one_user_opens_at_once_each_reserve_their_first_sentence_with_their_row(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    # Each opening reserves its first sentence, writes its row and commits in one round trip: the user's
    # counter, which each reservation locks until its COMMIT, is passed from one to the next without a wait.
    text = "Hello there. This is the second sentence."
    alice = make_user()
    async with app_with(db_dsn, tmp_path, VOICEGATE_USER_STREAMS="8") as client:
        voice = english_voice(sql, alice.id)
        opened = await asyncio.gather(
            *(
                client.post("/api/v1/speech", json={"voiceId": voice, "text": text}, headers=alice.headers)
                for _ in range(8)
            )
        )
    assert [answer.status_code for answer in opened] == [200] * 8, [answer.text[:200] for answer in opened]
    streams = {str(answer.headers["voicegate-stream-id"]) for answer in opened}
    rows = sql.execute(
        "select s.id::text, s.outcome, e.characters from speech_streams s"
        " join voicegate.usage_events e on e.work_id = s.id and e.kind = 'stream' and e.call_key = '0'"
        " where s.owner_id = %s",
        (alice.id,),
    ).fetchall()
    assert {row[0] for row in rows} == streams
    assert {(row[1], row[2]) for row in rows} == {("completed", len(sentences(text)[0]))}
    spent = one(sql, "select characters from voicegate.user_usage where owner_id = %s", (alice.id,))
    assert spent["characters"] == 8 * len(text) - 8, "both sentences of each, the space between not spoken"


async def test_a_stream_whose_users_counter_stays_locked_is_refused_429_and_leaves_nothing(
    client: Client, make_user: Callable[[], User], sql: Conn, db_dsn: str
) -> None:
    # The opening's reservation, its row and its COMMIT go in one pipeline: a lock the reservation cannot get
    # fails that pipeline as a 429 to retry, as when they went one by one, with nothing written.
    alice = make_user()
    voice = english_voice(sql, alice.id)
    spend(sql, alice.id, 1)
    with psycopg.connect(db_dsn) as holder:
        holder.execute("select from voicegate.user_usage where owner_id = %s for update", (alice.id,))
        refused = await client.post("/api/v1/speech", json={"voiceId": voice, "text": "Hi."}, headers=alice.headers)
        holder.rollback()
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "too_many_requests"
    assert one(sql, "select count(*) as n from speech_streams where owner_id = %s", (alice.id,))["n"] == 0
    opened = await client.post("/api/v1/speech", json={"voiceId": voice, "text": "Hi."}, headers=alice.headers)
    assert opened.status_code == 200, opened.text
