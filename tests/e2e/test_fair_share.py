"""Fair share under load (issue 25), over real HTTP with the queue consumers running: a user with
VOICEGATE_USER_STREAMS streams open is refused one more (429 `streams_limited`, Retry-After, nothing
recorded) on either speech route while another user streams, and streams again once one of theirs has
ended; and the CPU executor's threads end with the app."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from backend.app import create_app
from backend.settings import settings_from_env
from devkit.db import Conn, one
from devkit.streaming import stream
from fakes import ElevenLabsFake, serve
from fakes.elevenlabs import ElevenVoice
from queue_consumers.worker import consume_in_app
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.e2e.conftest import FAST, served_app
from tests.e2e.speech import THREE_SENTENCES, until_state
from tests.integration.api.conftest import JWT_SECRET, User
from tests.provider_support import ELEVEN_KEY

pytestmark = pytest.mark.timeout(120)
CAP = 2


@pytest.fixture
def eleven() -> Iterator[tuple[ElevenLabsFake, str]]:
    """The ElevenLabs fake, knowing voices `v1` and `v2` (one a user each), streaming 0.1 s of audio every 0.1 s
    (real time): a stream of THREE_SENTENCES stays open about 5 s."""
    fake = ElevenLabsFake(ELEVEN_KEY)
    for voice_id in ("v1", "v2"):
        fake.voices[voice_id] = ElevenVoice(voice_id, "Ada", None, {}, [])
    fake.stream_interval_s = 0.1
    with serve(fake) as url:
        yield fake, url


async def launch_ready(client: httpx.AsyncClient, user: User, voice_id: str) -> tuple[str, str]:
    """A reflection of `user`'s with the fake's voice `voice_id` attached and synced: its id and its voice's id."""
    rid = (await client.post("/v1/reflections", json={"name": "Ada"}, headers=user.headers)).json()["id"]
    attached = await client.patch(
        f"/v1/reflections/{rid}/voice", json={"provider": "elevenlabs", "voice_id": voice_id}, headers=user.headers
    )
    assert attached.status_code == 202, attached.text
    state = await until_state(client, user, rid, lambda s: s["launchReady"])
    return rid, state["voice"]["voiceId"]


def streams_of(sql: Conn, user: User) -> int:
    return int(one(sql, "select count(*) as n from speech_streams where owner_id = %s", (user.id,))["n"])


async def test_a_user_past_the_stream_cap_is_refused_while_another_user_streams(
    db_dsn: str, make_user: Callable[[], User], sql: Conn, tmp_path: Path, eleven: tuple[ElevenLabsFake, str]
) -> None:
    env = {"ELEVENLABS_API_KEY": ELEVEN_KEY, "ELEVENLABS_BASE_URL": eleven[1], "VOICEGATE_USER_STREAMS": str(CAP)}
    alice, bob = make_user(), make_user()
    with served_app(db_dsn, tmp_path, consumers=True, **env) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            alice_rid, alice_voice = await launch_ready(client, alice, "v1")
            bob_rid, _ = await launch_ready(client, bob, "v2")
            speech = f"/v1/reflections/{alice_rid}/speech"
            async with contextlib.AsyncExitStack() as held:
                bodies = []  # kept: a body iterator dropped midway closes its connection, ending the stream
                for _ in range(CAP):
                    response = await held.enter_async_context(
                        client.stream("POST", speech, json={"text": THREE_SENTENCES}, headers=alice.headers)
                    )
                    assert response.status_code == 200
                    bodies.append(response.aiter_raw())
                    assert await anext(bodies[-1])  # streaming, and open until the stack closes it
                refused = [
                    await client.post(speech, json={"text": "One more."}, headers=alice.headers),
                    await client.post(
                        "/api/v1/speech", json={"voiceId": alice_voice, "text": "One more."}, headers=alice.headers
                    ),
                ]
                for answer in refused:
                    assert answer.status_code == 429, answer.text
                    assert answer.headers["content-type"] == "application/problem+json"
                    assert answer.headers["retry-after"] == "1"
                    assert answer.json()["code"] == "streams_limited"
                assert streams_of(sql, alice) == CAP  # a refusal records no stream

                heard = await stream(client, f"/v1/reflections/{bob_rid}/speech", bob.token, {"text": "Just this one."})
                assert heard.status == 200, heard.body[:300]
                assert heard.body

            # Alice's streams were closed by her client: once they have ended she streams again.
            deadline = time.monotonic() + 20
            while (again := await stream(client, speech, alice.token, {"text": "Back again."})).status == 429:
                assert time.monotonic() < deadline, "alice's ended streams still count"
                await asyncio.sleep(0.05)
            assert again.status == 200, again.body[:300]
    assert streams_of(sql, alice) == CAP + 1
    outcomes = sql.execute(
        "select outcome, count(*) from speech_streams where owner_id = %s group by outcome", (alice.id,)
    ).fetchall()
    assert dict(outcomes) == {"canceled": CAP, "completed": 1}


def test_the_cpu_executors_threads_end_with_the_app(db_dsn: str, tmp_path: Path) -> None:
    settings = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path), **FAST, "VOICEGATE_CPU_WORKERS": "3"}),
        {"SUPABASE_JWT_SECRET": JWT_SECRET},
    )
    app = create_app(settings, db_dsn, consumers=consume_in_app, embedded=EMBEDDED)

    def executor_threads() -> list[str]:
        prefix = f"{app.state.cpu.name}-"
        return [thread.name for thread in threading.enumerate() if thread.name.startswith(prefix)]

    with serve(app, lifespan="on") as url:
        assert httpx.get(f"{url}/healthz").status_code == 200  # served, so the lifespan has started
        # Its three threads, as many for work that yields, and for each kind of long call (asked, queued).
        assert len(executor_threads()) == 4 * 3
        assert app.state.worker_context.cpu is app.state.cpu
    assert executor_threads() == []
