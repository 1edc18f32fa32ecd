"""Removed users' tokens flooding `voicegate up` while a live user works (issue 77): every flood request is a 401,
and the live user never meets a 500, during the flood or after it.

Measured on 29a95f3 with one removed user's token sent from 8 threads for 25 s: 281 of the live user's 334 requests
answered 500 (`prepared statement "_pg3_N" does not exist`), and still 57 of 120 a minute and a half later: each
refusal of the removed user's account, raised in the opening of the request's transaction, left its pooled connection
believing in a prepared statement the aborted pipeline never made. Here the flood comes from many removed accounts
(each account's first request reaches the database; once it has said an account is gone, a process refuses its
tokens before any database work), on two API processes with small pools, so connections are reused often."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from devkit.db import create_user, seed_consent
from devkit.up import Running, running_up
from fakes import ElevenLabsFake, serve
from fakes.elevenlabs import ElevenVoice
from standins.dev_keys import load_or_create_jwt_secret
from standins.dev_tokens import mint_user_token
from tests.conftest import server_dir
from tests.provider_support import ELEVEN_KEY

pytestmark = pytest.mark.timeout(180)

REMOVED_USERS = 400
FLOOD_CLIENTS, LIVE_CLIENTS = 8, 6
FLOOD_S, AFTER_S = 5.0, 2.0


@pytest.fixture
def up_and_fake() -> Iterator[tuple[Running, ElevenLabsFake]]:
    fake = ElevenLabsFake(ELEVEN_KEY)
    fake.faults.latency_s = 0.05
    with serve(fake) as url, server_dir("e2e") as root:
        # The database's deadlines are this test's own: at the defaults (a statement answered within 1 s, rounds of
        # 0.75 s for a connection), a machine so loaded that Postgres does not answer a one-row read within the
        # second is answered 503, as it should be, and that is not what this test is about. The full suite met one
        # such 503 among 444 answers; 2 of 26 runs on a core shared with two busy loops met one, a removed user's
        # request each time (the one traced: its `require_user` read cut at the deadline). The 500s it is about come
        # at any deadline.
        settings = {
            "VOICEGATE_API_PROCESSES": "2",
            "VOICEGATE_DB_POOL_MAX": "4",
            "VOICEGATE_DB_TIMEOUT": "5",
            "VOICEGATE_DB_CONNECT_TIMEOUT": "2",
            "ELEVENLABS_API_KEY": ELEVEN_KEY,
            "ELEVENLABS_BASE_URL": url,
        }
        with running_up(Path(root), settings=settings) as up:
            yield up, fake


def _users(up: Running, fake: ElevenLabsFake) -> tuple[str, str, list[str]]:
    """The live user's token and ready voice, and the tokens of `REMOVED_USERS` users whose rows are deleted."""
    secret = load_or_create_jwt_secret(up.pg.data_dir.parent)
    with psycopg.connect(up.pg.dsn, autocommit=True) as sql:
        live = create_user(sql)
        fake.voices["v-live"] = ElevenVoice("v-live", "Ada", None, {}, [])
        voice = sql.execute(
            "insert into voices (owner_id, name, status, tts_provider, provider_voice_id, consent_id)"
            " values (%s, 'Ada', 'ready', 'elevenlabs', 'v-live', %s) returning id",
            (live, seed_consent(sql, live)),
        ).fetchone()
        assert voice is not None
        removed = [create_user(sql) for _ in range(REMOVED_USERS)]
        sql.execute("delete from auth.users where id = any(%s)", (removed,))
    return mint_user_token(secret, live), str(voice[0]), [mint_user_token(secret, user) for user in removed]


async def _flood(base: str, tokens: list[str], until: float, over: asyncio.Event) -> Counter[int]:
    """Removed users' requests until `until` and every token has been sent at least once (a loaded machine sends
    fewer in the time); `over` is set when the flood has ended."""
    answers: Counter[int] = Counter()
    turn = iter(range(10**9))
    sent = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal sent
        while time.monotonic() < until or sent < len(tokens):
            sent += 1
            token = tokens[next(turn) % len(tokens)]
            body = {"voiceId": str(uuid.uuid4()), "text": "Let me in."}
            answer = await http.post("/api/v1/clone", json=body, headers={"Authorization": f"Bearer {token}"})
            answers[answer.status_code] += 1

    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            await asyncio.gather(*(client(http) for _ in range(FLOOD_CLIENTS)))
    finally:
        over.set()
    return answers


async def _work(base: str, token: str, voice: str, over: asyncio.Event) -> tuple[Counter[int], list[str]]:
    """The live user creating jobs and cancelling them, as fast as they are answered, until `over` is set: how
    many answers of each status, and each 5xx's request and problem (what a failure has to say)."""
    answers: Counter[int] = Counter()
    failed: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}

    def count(answer: httpx.Response) -> httpx.Response:
        answers[answer.status_code] += 1
        if answer.status_code >= 500:
            failed.append(f"{answer.request.method} {answer.request.url.path}: {answer.status_code} {answer.text}")
        return answer

    async def client(http: httpx.AsyncClient) -> None:
        while not over.is_set():
            created = count(
                await http.post("/api/v1/clone", json={"voiceId": voice, "text": "Hello."}, headers=headers)
            )
            if created.status_code == 202:
                job = created.json()["jobId"]
                count(await http.post(f"/api/v1/clone/{job}/cancel", headers=headers))
                count(await http.get(f"/api/v1/clone/{job}/status", headers=headers))

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        await asyncio.gather(*(client(http) for _ in range(LIVE_CLIENTS)))
    return answers, failed


async def test_a_removed_users_flood_leaves_another_user_no_500_during_or_after(
    up_and_fake: tuple[Running, ElevenLabsFake],
) -> None:
    up, fake = up_and_fake
    live, voice, removed = _users(up, fake)
    flooding, later = asyncio.Event(), asyncio.Event()

    flood, during = await asyncio.gather(
        _flood(up.base_url, removed, time.monotonic() + FLOOD_S, flooding), _work(up.base_url, live, voice, flooding)
    )
    asyncio.get_running_loop().call_later(AFTER_S, later.set)
    after = await _work(up.base_url, live, voice, later)

    assert set(flood) == {401}, flood
    assert sum(flood.values()) >= REMOVED_USERS, "the flood reached every removed account"
    for answers, failed in (during, after):
        assert not failed, (answers, failed)
        assert answers[202] > 0, answers
