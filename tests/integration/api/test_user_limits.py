"""What one user may create, held by the database whatever the number of API processes (docs/limits.md). Every
burst here is sent at once, half to each of two apps over one database, each served on a port of its own with its
own pool and in-process counters, as two API processes are. A user's webhook endpoints stop at `MAX_ENDPOINTS`,
their spoken consents awaiting a recording at VOICEGATE_USER_OPEN_CONSENTS and their draft voices at
VOICEGATE_USER_DRAFT_VOICES; each kind of create (spoken consents, reflections, voices by any route, webhook
endpoints) at VOICEGATE_USER_CREATES per VOICEGATE_USER_CREATE_WINDOW. A refusal is a 429 with its own code and
`Retry-After`, writes nothing, and leaves other users alone. The window's clock is each bucket's `counted_at`,
moved back here by SQL rather than waited for."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from backend.app import create_app
from backend.settings import settings_from_env
from backend.webhooks.service import MAX_ENDPOINTS
from devkit.db import Conn, one
from fakes import serve
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.integration.api.conftest import JWT_SECRET, User
from tests.integration.api.test_reflection_voice_api import WAV
from tests.integration.api.test_voice_names import engine_voice, ready_sample

Client = httpx.AsyncClient
#: Requests one burst sends at once, half to each app.
BURST = 32
RECEIVER = "http://127.0.0.1:9/hooks/voicegate"


@asynccontextmanager
async def two_processes(db_dsn: str, tmp_path: Path, **env: str) -> AsyncIterator[tuple[Client, Client]]:
    """Two apps configured by `env` over one database, each served on a real port from its own thread and event
    loop, with its own pool and in-process counters as two API processes have; a client of each."""
    async with AsyncExitStack() as stack:
        clients = []
        for name in ("a", "b"):
            settings = settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path / name), **env})
            app = create_app(with_auth_keys(settings, {"SUPABASE_JWT_SECRET": JWT_SECRET}), db_dsn, embedded=EMBEDDED)
            url = stack.enter_context(serve(app, lifespan="on"))
            clients.append(await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30)))
        yield clients[0], clients[1]


def create(client: Client, user: User, what: str) -> Awaitable[httpx.Response]:
    """The request that makes one of `user`'s `what`, with a name of its own (a voice's must be)."""
    own = uuid.uuid4().hex[:8]
    routes = {
        "consent": ("/api/v1/consents", {"subjectName": f"Ada {own}"}),
        "reflection": ("/v1/reflections", {"name": f"Reflection {own}"}),
        "draft voice": ("/api/clone/upload-url", {"name": f"Voice {own}", "consent": True}),
        "webhook endpoint": ("/v1/webhooks", {"url": f"{RECEIVER}/{own}"}),
    }
    path, body = routes[what]
    return client.post(path, json=body, headers=user.headers)


async def burst(clients: tuple[Client, Client], user: User, what: str, count: int = BURST) -> list[httpx.Response]:
    """`count` creates of `what` by `user`, all sent at once, alternately to each app."""
    return list(await asyncio.gather(*(create(clients[n % 2], user, what) for n in range(count))))


def statuses(answers: list[httpx.Response]) -> Counter[tuple[int, str | None]]:
    """How many answers came with each status and problem code (None for a success)."""
    return Counter((a.status_code, a.json()["code"] if a.status_code >= 400 else None) for a in answers)


def retry_after(answer: httpx.Response) -> int:
    """The refusal's Retry-After, in whole seconds."""
    assert answer.headers["content-type"] == "application/problem+json"
    return int(answer.headers["retry-after"])


def endpoints(sql: Conn, owner: uuid.UUID) -> dict[str, int]:
    return one(
        sql,
        "select count(*) as endpoints,"
        " (select count(*) from voicegate.webhook_secrets s join webhook_endpoints e on e.id = s.endpoint_id"
        "   where e.owner_id = %(owner)s) as secrets"
        " from webhook_endpoints where owner_id = %(owner)s",
        {"owner": owner},
    )


#: The caller's rows each kind of create makes, counted.
STORED = {
    "consent": "select count(*) as n from voice_consents where owner_id = %s and kind = 'spoken'",
    "reflection": "select count(*) as n from reflections where owner_id = %s",
    "draft voice": "select count(*) as n from voices where owner_id = %s and status = 'draft'",
    "webhook endpoint": "select count(*) as n from webhook_endpoints where owner_id = %s",
}


def stored(sql: Conn, owner: uuid.UUID, what: str) -> int:
    n: int = one(sql, STORED[what], (owner,))["n"]
    return n


def window_passes(sql: Conn, owner: uuid.UUID, seconds: float) -> None:
    """`seconds` of the owner's buckets' window pass, as far as the database can tell."""
    sql.execute(
        "update voicegate.user_creates set counted_at = counted_at - make_interval(secs => %s) where owner_id = %s",
        (seconds, owner),
    )


async def settled(
    clients: tuple[Client, Client], user: User, what: str, answers: list[httpx.Response]
) -> list[httpx.Response]:
    """`answers` with each create refused as one of too many at once (a loaded machine queues a burst past the
    take's lock timeout) sent again after its Retry-After, as a client does, until none is."""
    for _ in range(BURST):
        busy = [n for n, a in enumerate(answers) if a.status_code == 429 and "at once" in a.json()["detail"]]
        if not busy:
            return answers
        await asyncio.sleep(max(retry_after(answers[n]) for n in busy))
        for n in busy:
            answers[n] = await create(clients[n % 2], user, what)
    raise AssertionError(f"creates still refused as too many at once after {BURST} rounds")


async def test_concurrent_endpoint_creates_stop_at_the_cap(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    user, other = make_user(), make_user()
    async with two_processes(db_dsn, tmp_path) as apps:
        answers = await settled(apps, user, "webhook endpoint", await burst(apps, user, "webhook endpoint"))

        assert statuses(answers) == {(201, None): MAX_ENDPOINTS, (409, "conflict"): BURST - MAX_ENDPOINTS}
        assert endpoints(sql, user.id) == {"endpoints": MAX_ENDPOINTS, "secrets": MAX_ENDPOINTS}
        assert (await create(apps[1], other, "webhook endpoint")).status_code == 201


@pytest.mark.parametrize("what", list(STORED))
async def test_creates_past_the_rate_are_refused_until_the_window_passes(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn, what: str
) -> None:
    creates, window = 4, 3600
    user, other = make_user(), make_user()
    env = {"VOICEGATE_USER_CREATES": str(creates), "VOICEGATE_USER_CREATE_WINDOW": str(window)}
    async with two_processes(db_dsn, tmp_path, **env) as apps:
        answers = await burst(apps, user, what)

        assert statuses(answers) == {(201, None): creates, (429, "creates_limited"): BURST - creates}
        refused = [a for a in answers if a.status_code == 429]
        # One create comes back every window / creates seconds; none has yet.
        assert {1 <= retry_after(a) <= window // creates for a in refused} == {True}
        assert any("the next may be created in" in a.json()["detail"] for a in refused)
        assert stored(sql, user.id, what) == creates
        assert (await create(apps[0], other, what)).status_code == 201

        # A quarter of the window brings one create back; the refusals before it spent none.
        window_passes(sql, user.id, window / creates)
        assert statuses(await burst(apps, user, what, 8)) == {(201, None): 1, (429, "creates_limited"): 7}
        # A whole window brings them all back, and no more.
        window_passes(sql, user.id, window)
        assert statuses(await burst(apps, user, what, 8)) == {(201, None): creates, (429, "creates_limited"): 4}
        assert stored(sql, user.id, what) == 2 * creates + 1


async def test_spoken_consents_awaiting_their_recording_stop_at_the_cap(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    cap = 3
    user, other = make_user(), make_user()
    async with two_processes(db_dsn, tmp_path, VOICEGATE_USER_OPEN_CONSENTS=str(cap)) as apps:
        answers = await burst(apps, user, "consent")

        assert statuses(answers) == {(201, None): cap, (429, "open_consents_limited"): BURST - cap}
        refused = [a for a in answers if a.status_code == 429]
        # Until the oldest lapses, 10 minutes after it was made (a minute's slack for a slow run).
        assert {540 <= retry_after(a) <= 600 for a in refused} == {True}
        assert "record one" in refused[0].json()["detail"]
        assert stored(sql, user.id, "consent") == cap
        assert (await create(apps[0], other, "consent")).status_code == 201

        # One lapses: its place is free for one more, and only one.
        sql.execute(
            "update voice_consents set expires_at = now() - interval '1 second'"
            " where id = (select id from voice_consents where owner_id = %s order by created_at limit 1)",
            (user.id,),
        )
        assert statuses(await burst(apps, user, "consent", 8)) == {(201, None): 1, (429, "open_consents_limited"): 7}


async def test_a_create_queued_past_the_lock_timeout_is_refused_as_one_of_too_many_at_once(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    async with two_processes(db_dsn, tmp_path) as apps:
        assert (await create(apps[0], user, "reflection")).status_code == 201
        # Another transaction holds the user's bucket, as a create still being made does.
        with psycopg.connect(db_dsn) as holder:
            held = holder.execute(
                "select 1 from voicegate.user_creates where owner_id = %s and kind = 'reflection' for update",
                (user.id,),
            ).fetchall()
            assert held == [(1,)]
            started = time.monotonic()
            answer = await create(apps[1], user, "reflection")
            waited = time.monotonic() - started
            holder.rollback()

        assert (answer.status_code, answer.json()["code"]) == (429, "creates_limited")
        assert retry_after(answer) == 1
        assert "being created at once" in answer.json()["detail"]
        # It waited out the lock timeout (0.8 s), not the database deadline (1 s, a 503).
        assert 0.8 <= waited < 5
        assert stored(sql, user.id, "reflection") == 1
        assert (await create(apps[1], user, "reflection")).status_code == 201


async def test_a_create_refused_for_a_cap_spends_none_of_the_rate(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    env = {"VOICEGATE_USER_CREATES": "4", "VOICEGATE_USER_OPEN_CONSENTS": "2"}
    async with two_processes(db_dsn, tmp_path, **env) as apps:
        assert statuses(await burst(apps, user, "consent", 8)) == {(201, None): 2, (429, "open_consents_limited"): 6}
        sql.execute("update voice_consents set expires_at = now() where owner_id = %s", (user.id,))

        assert statuses(await burst(apps, user, "consent", 8)) == {(201, None): 2, (429, "creates_limited"): 6}


async def test_draft_voices_stop_at_the_cap_until_one_is_deleted(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    cap = 3
    user, other = make_user(), make_user()
    async with two_processes(db_dsn, tmp_path, VOICEGATE_USER_DRAFT_VOICES=str(cap)) as apps:
        answers = await burst(apps, user, "draft voice")

        assert statuses(answers) == {(201, None): cap, (429, "draft_voices_limited"): BURST - cap}
        refused = [a for a in answers if a.status_code == 429]
        assert {retry_after(a) for a in refused} == {60}
        assert "finalize one" in refused[0].json()["detail"]
        # Nothing of a refused one stays: neither its voice nor the consent ticked with it.
        counts = one(
            sql,
            "select (select count(*) from voices where owner_id = %(u)s) as voices,"
            " (select count(*) from voice_consents where owner_id = %(u)s) as consents",
            {"u": user.id},
        )
        assert counts == {"voices": cap, "consents": cap}
        assert (await create(apps[0], other, "draft voice")).status_code == 201

        drafts = (await apps[0].get("/api/voices", headers=user.headers)).json()["voices"]
        assert (await apps[1].delete(f"/api/voices/{drafts[0]['id']}", headers=user.headers)).status_code == 204
        again = await burst(apps, user, "draft voice", 8)
        assert statuses(again) == {(201, None): 1, (429, "draft_voices_limited"): 7}


async def test_every_route_that_makes_a_voice_counts_against_one_rate(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    async with two_processes(db_dsn, tmp_path, VOICEGATE_USER_CREATES="5") as (app, _):
        made = [(await app.post("/v1/reflections", json={"name": n}, headers=user.headers)).json()["id"] for n in "ab"]
        cloned, attached = made

        def voice_makers() -> list[Callable[[], Awaitable[httpx.Response]]]:
            """One new voice by each route that makes one, from inputs no voice was made from yet."""
            own = uuid.uuid4().hex[:8]
            engine_voice(sql, user.id, f"local-{own}", own)
            sample, set_sample = ready_sample(sql, user.id, f"A {own}"), ready_sample(sql, user.id, f"B {own}")
            clone_form = {"data": {"consent": "true"}, "files": {"file": ("me.wav", WAV, "audio/wav")}}
            post, patch, headers = app.post, app.patch, user.headers
            return [
                lambda: post("/api/clone/upload-url", json={"name": own, "consent": True}, headers=headers),
                lambda: post(f"/v1/reflections/{cloned}/voice/clone", **clone_form, headers=headers),
                lambda: post("/api/v1/clone", json={"sampleId": sample, "text": "Hello."}, headers=headers),
                lambda: post("/api/voices", json={"sampleIds": [set_sample]}, headers=headers),
                lambda: patch(
                    f"/v1/reflections/{attached}/voice",
                    json={"provider": "local", "voice_id": f"local-{own}"},
                    headers=headers,
                ),
            ]

        def written() -> dict[str, int]:
            tables = ("voices", "voice_samples", "voice_clone_attempts", "synthesis_jobs")
            return {t: one(sql, f"select count(*) as n from {t} where owner_id = %s", (user.id,))["n"] for t in tables}

        makers = voice_makers()
        before = written()
        first = [await make() for make in makers]
        assert [a.status_code for a in first] == [201, 202, 202, 202, 202], [a.text for a in first]
        assert written()["voices"] == before["voices"] + 5

        makers = voice_makers()
        before = written()
        again = [await make() for make in makers]
        assert [(a.status_code, a.json()["code"]) for a in again] == [(429, "creates_limited")] * 5
        assert written() == before
