"""A user erased while their work is in flight, over real processes, in rounds: each round's user has three ready
voices, clips, a webhook, a spoken consent with its recording and a signed upload URL taken before; while they upload
samples, ask for clips, clone voices and stream speech against the ElevenLabs fake, `voicegate ops erase-user --apply`
erases them, and the `voicegate worker` is SIGKILLed and replaced in the middle of it. Once the receipt says `done`
nothing of theirs is left: no object in any bucket (neither the row nor the stand-in's file), no row naming them in
any table, no voice of theirs at the fake; the PUT to their signed upload URL after the delete was refused, and their
token answers 401. A user who is not erased keeps everything."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from backend.providers.elevenlabs import KEY_LABEL
from devkit.audio_corpus import speech_wav
from devkit.db import create_user, one
from fakes.core import Fault
from fakes.elevenlabs import ElevenVoice
from scripts import erase_user as erase_user_script
from standins.dev_tokens import mint_service_key, mint_user_token
from tests.conftest import server_dir
from tests.e2e.stack import Stack, running_stack
from tests.integration.api.conftest import JWT_SECRET
from tests.support import rows_naming, stored_files

pytestmark = pytest.mark.timeout(150)
ROUNDS = 3
VOICES = 3
#: Requests of each kind a client has accepted before it waits for the erasure (then it goes on until refused).
BEFORE = 3
#: How long each round's user works before the erasure, and the bound on every wait.
WARM_UP_S = 30.0
ERASURE_S = 60.0
TEXT = "Hello there. This is a clip in my own voice."
#: What a client of an erased user is answered: their token's user is gone, Storage refuses their folder, or the row
#: they name has gone with them.
GONE = (401, 403, 404)


@pytest.fixture
def stack(db_dsn: str) -> Iterator[Stack]:
    with server_dir("erasure-race") as workdir, running_stack(db_dsn, Path(workdir)) as running:
        yield running


@dataclass
class Racer:
    """One round's user and what their clients did."""

    user: uuid.UUID
    headers: dict[str, str]
    voices: list[str] = field(default_factory=list)
    provider_voices: set[str] = field(default_factory=set)
    upload_url: str = ""
    attempts: set[str] = field(default_factory=set)
    accepted: dict[str, int] = field(default_factory=dict)
    #: Set as the erasure is asked for: from then on a refusal ends a client's loop.
    erasing: threading.Event = field(default_factory=threading.Event)
    #: Set when the round ends, however it ends.
    stop: threading.Event = field(default_factory=threading.Event)

    def count(self, what: str) -> None:
        self.accepted[what] = self.accepted.get(what, 0) + 1


def service_headers() -> dict[str, str]:
    key = mint_service_key(JWT_SECRET)
    return {"Authorization": f"Bearer {key}", "apikey": key}


def seed(stack: Stack, sql: psycopg.Connection[Any], n: int) -> Racer:
    """A user with `VOICES` ready ElevenLabs voices (attached through reflections), a spoken consent with its
    recording, a webhook endpoint and a signed upload URL for a new voice's sample."""
    user = create_user(sql)
    racer = Racer(user, {"Authorization": f"Bearer {mint_user_token(JWT_SECRET, user)}"})
    with httpx.Client(base_url=stack.api_url, headers=racer.headers, timeout=30) as client:
        for v in range(VOICES):
            provider_voice = f"race-{n}-{v}-{uuid.uuid4().hex[:8]}"
            stack.fake.voices[provider_voice] = ElevenVoice(provider_voice, f"r{n}v{v}", None, {}, [])
            racer.provider_voices.add(provider_voice)
            rid = client.post("/v1/reflections", json={"name": f"r{v}"}).raise_for_status().json()["id"]
            client.patch(
                f"/v1/reflections/{rid}/voice", json={"provider": "elevenlabs", "voice_id": provider_voice}
            ).raise_for_status()
        ticket = client.post("/api/clone/upload-url", json={"name": "Later", "consent": True}).raise_for_status()
        # Signed for the public address of the settings; the stand-in is this API's `/storage/v1`.
        racer.upload_url = stack.api_url + "/storage/v1" + ticket.json()["upload_url"].split("/storage/v1", 1)[1]
    consent = uuid.uuid4()
    recording = f"{user}/consents/{consent}/recording"
    with httpx.Client(base_url=stack.api_url, headers=service_headers(), timeout=30) as client:
        client.post(
            f"/storage/v1/object/voice-samples/{recording}",
            content=speech_wav(2.0),
            headers={"content-type": "audio/wav"},
        ).raise_for_status()
    sql.execute(
        "insert into voice_consents (id, owner_id, subject_name, consent_text_version, kind, status, phrase, code,"
        " language, expires_at, statement_sample_path) values (%s, %s, 'Ada', 'v1', 'spoken', 'rejected',"
        " 'I agree to have my voice cloned.', '4821', 'en', now() + interval '1 day', %s)",
        (consent, user, recording),
    )
    endpoint = one(
        sql,
        "insert into webhook_endpoints (owner_id, url, events) values (%s, 'https://hooks.example.com/race',"
        " array['synthesis.succeeded', 'sample.ready', 'voice.ready'])"
        " returning id",
        (user,),
    )["id"]
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    sql.execute("insert into voicegate.webhook_secrets (endpoint_id, secret) values (%s, %s)", (endpoint, secret))
    stack.wait_for(
        lambda: (
            one(
                sql,
                "select count(*) as n from voices where owner_id = %s and provider_voice_id is not null",
                (user,),
            )["n"]
            == VOICES
        ),
        ERASURE_S,
        "the voices to be ready",
    )
    ready = "select id from voices where owner_id = %s and provider_voice_id is not null"
    racer.voices = [str(row[0]) for row in sql.execute(ready, (user,))]
    return racer


def race(stack: Stack, racer: Racer, sample: bytes) -> list[threading.Thread]:
    """The user's clients, each in a loop: `BEFORE` requests accepted, then (once the erasure is asked for) on until
    one is answered as the erased user's (`GONE`), or the round stops them."""

    def loop(what: str, work: Callable[[httpx.Client, int], httpx.Response]) -> None:
        deadline = time.monotonic() + WARM_UP_S + ERASURE_S
        with httpx.Client(base_url=stack.api_url, headers=racer.headers, timeout=30) as client:
            turn = 0
            while time.monotonic() < deadline and not racer.stop.is_set():
                if racer.accepted.get(what, 0) >= BEFORE and not racer.erasing.wait(WARM_UP_S):
                    return
                erasing = racer.erasing.is_set()
                try:
                    answer = work(client, turn)
                except httpx.HTTPError:
                    continue  # an answer cut short by the erasure: ask again, and hear the refusal
                if answer.is_success:
                    racer.count(what)
                elif erasing and answer.status_code in GONE:
                    racer.count(f"{what} refused {answer.status_code}")
                    return
                turn += 1

    def upload(client: httpx.Client, _: int) -> httpx.Response:
        form = {"consent": "true", "language": "en"}
        return client.post("/api/v1/voice-samples", data=form, files={"file": ("me.wav", sample, "audio/wav")})

    def clip(client: httpx.Client, turn: int) -> httpx.Response:
        return client.post("/api/v1/clone", json={"voiceId": racer.voices[turn % VOICES], "text": TEXT})

    def clone(client: httpx.Client, turn: int) -> httpx.Response:
        made = client.post("/v1/reflections", json={"name": f"clone {turn}"})
        if not made.is_success:
            return made
        cloned = client.post(
            f"/v1/reflections/{made.json()['id']}/voice/clone",
            data={"consent": "true", "language": "en", "provider": "elevenlabs"},
            files={"file": ("me.wav", sample, "audio/wav")},
        )
        if cloned.is_success:
            racer.attempts.add(cloned.json()["attemptId"])
        return cloned

    def speak(client: httpx.Client, turn: int) -> httpx.Response:
        body = {"voiceId": racer.voices[turn % VOICES], "text": TEXT, "format": "pcm_24000"}
        with client.stream("POST", "/api/v1/speech", json=body) as answer:
            answer.read()
        return answer

    threads = [
        threading.Thread(target=loop, args=(what, work), name=f"race-{what}", daemon=True)
        for what, work in (("uploads", upload), ("clips", clip), ("clones", clone), ("streams", speak))
    ]
    for thread in threads:
        thread.start()
    return threads


def erasure(sql: psycopg.Connection[Any], user: uuid.UUID) -> dict[str, Any] | None:
    with sql.cursor(row_factory=dict_row) as cur:
        return cur.execute("select * from voicegate.erasures where user_id = %s", (user,)).fetchone()


def their_voices(stack: Stack, racer: Racer) -> set[str]:
    """The voices at the fake the user's attempts made (labelled with their enrolment keys) or attached."""
    return racer.provider_voices.intersection(stack.fake.voices.copy()) | made_for(stack, racer)


def made_for(stack: Stack, racer: Racer) -> set[str]:
    """The voices at the fake the user's clone attempts made."""
    keys = {f"vg-{attempt}" for attempt in racer.attempts}
    return {voice_id for voice_id, voice in stack.fake.voices.copy().items() if voice.labels.get(KEY_LABEL) in keys}


@dataclass(frozen=True)
class Left:
    """What a round's erasure left, once its receipt was written."""

    state: str
    objects: int
    files: int
    rows: dict[str, int]
    voices: int
    late_put: tuple[int, str | None]
    token_after: int
    work: dict[str, int]


def state_of(sql: psycopg.Connection[Any], user: uuid.UUID) -> str | None:
    found = erasure(sql, user)
    return None if found is None else str(found["state"])


def erase_amid_work(
    stack: Stack, sql: psycopg.Connection[Any], n: int, worker: subprocess.Popen[bytes], sample: bytes
) -> tuple[Left, subprocess.Popen[bytes]]:
    """Round `n`: a user erased while their clients work, the worker killed in the middle of it and replaced; what
    the erasure left once it closed, and the worker that replaced the killed one."""
    racer = seed(stack, sql, n)
    # The round's first create is made at the provider, and its answer lost: the worker waits for it while the
    # erasure comes, and no row of the user's will ever name that voice.
    stack.fake.faults.fail_next(Fault("lost", method="POST", path_prefix="/v1/voices/add"))
    threads = race(stack, racer, sample)
    try:
        stack.wait_for(
            lambda: (
                bool(made_for(stack, racer))
                and all(racer.accepted.get(what) for what in ("uploads", "clips", "clones", "streams"))
            ),
            WARM_UP_S,
            f"round {n}'s work to be under way: {racer.accepted}",
        )
        racer.erasing.set()
        applied = erase_user_script.main(
            [str(racer.user), "--apply", "--json", "--database-url", stack.database_url, "--actor", "test:race"]
        )
        assert applied == 0
        # The worker dies in the middle of it: as the erasure is asked for, or once its first step has begun.
        if n % 2:
            stack.wait_for(lambda: state_of(sql, racer.user) != "pending", ERASURE_S, "the erasure to start")
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(30) == -signal.SIGKILL
        worker = stack.start_worker()
        put = httpx.put(racer.upload_url, content=sample, headers={"content-type": "audio/wav"}, timeout=30)
        for thread in threads:
            thread.join(ERASURE_S)
            assert not thread.is_alive(), f"{thread.name} still running after the user was erased"
    finally:
        racer.stop.set()
        racer.erasing.set()
        for thread in threads:
            thread.join(ERASURE_S)
    stack.wait_for(
        lambda: state_of(sql, racer.user) in ("done", "incomplete"), ERASURE_S, f"round {n}'s erasure to finish"
    )
    done = erasure(sql, racer.user)
    assert done is not None
    objects = one(sql, "select count(*) as n from storage.objects where name like %s", (f"{racer.user}/%",))["n"]
    left = Left(
        state=done["state"],
        objects=objects,
        files=len(stored_files(stack.workdir / "api" / "storage", racer.user)),
        rows=rows_naming(sql, racer.user),
        voices=len(their_voices(stack, racer)),
        late_put=(put.status_code, put.json().get("code") if put.is_client_error else None),
        token_after=httpx.get(f"{stack.api_url}/api/voices", headers=racer.headers, timeout=30).status_code,
        work=dict(racer.accepted),
    )
    print(f"round {n}: {left}; receipt {done['receipt']}")
    return left, worker


def test_an_erasure_amid_the_users_work_leaves_nothing_of_theirs(stack: Stack) -> None:
    sample = speech_wav(6.0, seed=3)
    worker = stack.start_worker()
    with psycopg.connect(stack.dsn, autocommit=True) as sql:
        bystander = create_user(sql)
        stack.fake.voices["bystander-voice"] = ElevenVoice("bystander-voice", "b", None, {}, [])
        kept = f"{bystander}/notes/kept.wav"
        with httpx.Client(base_url=stack.api_url, headers=service_headers(), timeout=30) as client:
            client.post(
                f"/storage/v1/object/voice-samples/{kept}",
                content=b"RIFF" + bytes(64),
                headers={"content-type": "audio/wav"},
            ).raise_for_status()
        left = []
        for n in range(ROUNDS):
            round_left, worker = erase_amid_work(stack, sql, n, worker, sample)
            left.append(round_left)

        assert [r.state for r in left] == ["done"] * ROUNDS, left
        assert [(r.objects, r.files, r.rows, r.voices) for r in left] == [(0, 0, {}, 0)] * ROUNDS, left
        # Storage's answer to a write refused: HTTP 400, its logical 403 (AccessDenied) in the body.
        assert [r.late_put for r in left] == [(400, "AccessDenied")] * ROUNDS, left
        assert [r.token_after for r in left] == [401] * ROUNDS, left
        assert "bystander-voice" in stack.fake.voices
        assert one(sql, "select count(*) as n from storage.objects where name = %s", (kept,))["n"] == 1
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, stack.worker_log(len(stack.workers) - 1)
