"""Every send of text to a provider goes through one charging path (issue 77): reserved in the ledger before it is
made, against the quota, resends included, on every kind of call that sends text (a job's piece, a stream's sentence,
a preview, a likeness probe); a send that never left this process is given back; so the ledger's characters are the
characters the provider received, exactly, and never pass the quota.

Before, with the provider answering 503 three times before it spoke (each call sent 4 times): a stream of 32
characters reached the provider as 128 and the ledger said 32; previews and probes alike; and a job's resends were
counted after they were made, past the quota. The provider here is the ElevenLabs fake, which records every request
it receives; an answer it never sends ("lost", "timeout") is one the client gave up on after its read timeout."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest

from backend.auth.verify import UserClaims
from backend.clone.preview_step import process_preview
from backend.clone.step import process_attempt
from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.db import units
from backend.errors import DatabaseUnavailable, QuotaExceeded
from backend.settings import settings_from_env
from backend.speech.service import SpeechService
from backend.speech.types import VoiceSpeechRequest
from backend.synthesis.step import process_synthesis
from backend.usage import ledger as usage_ledger
from devkit.db import Conn, create_user, one
from fakes import ElevenLabsFake, serve
from fakes.core import Fault
from tests.e2e.conftest import elevenlabs_env
from tests.e2e.test_samples_and_synthesis import cloned_voice, spoken_texts
from tests.integration.conftest import open_lifecycle
from tests.integration.test_likeness import enrolment
from tests.integration.test_usage_ledger import counted, queued_job, rows

TTS = "/v1/text-to-speech"
FAILED_503 = Fault("status", 503, method="POST", path_prefix=TTS)
LOST = Fault("lost", method="POST", path_prefix=TTS)
TIMED_OUT = Fault("timeout", method="POST", path_prefix=TTS)
#: How long the client waits for an answer: a lost one costs this much.
READ_TIMEOUT_S = 0.3


class Refusing(httpx.AsyncBaseTransport):
    """A transport whose next `refuse` requests to the provider's speech routes never leave: the connection is
    refused, as when the provider cannot be reached."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.refuse = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.refuse and request.url.path.startswith(TTS):
            self.refuse -= 1
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Setup:
    def __init__(self, ctx: WorkerContext, provider: ElevenLabsFake, transport: Refusing, env: dict[str, str]) -> None:
        self.ctx = ctx
        self.provider = provider
        self.transport = transport
        self.settings = settings_from_env(env)

    def received(self) -> int:
        """The characters the provider received in every speech request."""
        return sum(len(text) for text in spoken_texts(self.provider))

    def speech(self) -> SpeechService:
        ctx = self.ctx
        return SpeechService(ctx.db, ctx.providers, self.settings.provider_settings, ctx.cpu, ctx.ledger)


async def _setup(cpu: CpuExecutor, db_dsn: str, tmp_path: Path, quota: int) -> AsyncIterator[Setup]:
    provider = ElevenLabsFake(max_voices=100)
    transport = Refusing()
    with serve(provider) as url:
        env = {**elevenlabs_env(provider, url), "VOICEGATE_USER_CHARACTERS": str(quota)}
        async with (
            httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0, read=READ_TIMEOUT_S)) as http,
            open_lifecycle(cpu, db_dsn, tmp_path, http=http, **env) as ctx,
        ):
            yield Setup(ctx, provider, transport, {"VOICEGATE_DATA_DIR": str(tmp_path), **env})


@pytest.fixture
async def setup(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> AsyncIterator[Setup]:
    async for made in _setup(cpu, db_dsn, tmp_path, 100_000):
        yield made


def ledger_of(db: Conn, owner: uuid.UUID) -> list[dict[str, Any]]:
    return rows(
        db,
        "select kind, call_key, characters, sends from voicegate.usage_events where owner_id = %s and kind <> "
        "'enrolment' order by id",
        (owner,),
    )


def charged(db: Conn, owner: uuid.UUID) -> int:
    return sum(row["characters"] for row in ledger_of(db, owner))


def claims_of(user: uuid.UUID) -> UserClaims:
    raw = {"sub": str(user), "role": "authenticated", "aud": "authenticated"}
    return UserClaims(sub=str(user), email=None, role="authenticated", aal=None, session_id=None, raw=raw)


async def test_every_send_of_a_jobs_piece_is_reserved_before_it_is_made(setup: Setup, db: Conn) -> None:
    user = create_user(db)
    job = queued_job(db, user, cloned_voice(db, setup.provider, user), "One sentence only.")
    # Refused at once, an answer lost, refused again: the client sends the piece four times.
    for fault in (FAILED_503, LOST, FAILED_503):
        setup.provider.faults.fail_next(fault)

    done = await process_synthesis(setup.ctx, job, "w1")

    assert done.status == "succeeded"
    assert setup.received() == 4 * len("One sentence only.")
    assert [(row["kind"], row["sends"]) for row in ledger_of(db, user)] == [("job", 4)]
    assert charged(db, user) == counted(db, user) == setup.received()


async def test_a_send_that_never_left_is_given_back(setup: Setup, db: Conn) -> None:
    user = create_user(db)
    job = queued_job(db, user, cloned_voice(db, setup.provider, user), "Never heard.")
    # Every try of the run: the provider cannot be reached, so nothing was sent and nothing stays charged.
    setup.transport.refuse = 4

    done = await process_synthesis(setup.ctx, job, "w1")

    assert done.status == "queued", "a provider that cannot be reached is tried again later"
    assert setup.received() == 0
    assert ledger_of(db, user) == []
    assert counted(db, user) == 0
    # One refused connection, then the send: one send charged.
    setup.transport.refuse = 1
    assert (await process_synthesis(setup.ctx, job, "w2")).status == "succeeded"
    assert charged(db, user) == counted(db, user) == setup.received() == len("Never heard.")


async def test_a_resend_that_would_pass_the_quota_is_never_sent(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> None:
    text = "Exactly this."
    # Room for the first send and not for a second.
    async for setup in _setup(cpu, db_dsn, tmp_path, 2 * len(text) - 1):
        with psycopg.connect(db_dsn, autocommit=True) as db:
            user = create_user(db)
            job = queued_job(db, user, cloned_voice(db, setup.provider, user), text)
            setup.provider.faults.fail_next(FAILED_503, times=3)

            done = await process_synthesis(setup.ctx, job, "w1")

            assert done.status == "failed"
            failure = one(db, "select error_code from synthesis_jobs where id = %s", (job,))
            assert failure["error_code"] == QuotaExceeded.code
            assert setup.received() == len(text), "the resend the quota refused was never sent"
            assert charged(db, user) == counted(db, user) == setup.received()


async def test_a_streams_resends_are_charged_and_its_row_says_what_was_sent(setup: Setup, db: Conn) -> None:
    user = create_user(db)
    voice = cloned_voice(db, setup.provider, user)
    text = "The first sentence of the stream. And its second one."
    setup.provider.faults.fail_next(FAILED_503, times=2)
    setup.provider.faults.fail_next(TIMED_OUT)

    stream = await setup.speech().voice_speech(
        claims_of(user), VoiceSpeechRequest(voice_id=uuid.UUID(voice), text=text), ended=lambda: None
    )
    audio = b"".join([chunk async for chunk in stream])
    await stream.finish()

    assert audio
    assert [(row["call_key"], row["sends"]) for row in ledger_of(db, user)] == [("0", 4), ("1", 1)]
    assert charged(db, user) == counted(db, user) == setup.received()
    row = one(db, "select characters, outcome from speech_streams where owner_id = %s", (user,))
    assert (row["characters"], row["outcome"]) == (setup.received(), "completed")


async def test_a_stream_whose_first_resend_would_pass_the_quota_is_refused_unsent(
    cpu: CpuExecutor, db_dsn: str, tmp_path: Path
) -> None:
    text = "Only once."
    async for setup in _setup(cpu, db_dsn, tmp_path, len(text)):
        with psycopg.connect(db_dsn, autocommit=True) as db:
            user = create_user(db)
            voice = cloned_voice(db, setup.provider, user)
            setup.provider.faults.fail_next(FAILED_503)

            with pytest.raises(QuotaExceeded):
                await setup.speech().voice_speech(
                    claims_of(user), VoiceSpeechRequest(voice_id=uuid.UUID(voice), text=text), ended=lambda: None
                )

            assert setup.received() == len(text)
            assert charged(db, user) == counted(db, user) == setup.received()
            row = one(db, "select outcome, error_code from speech_streams where owner_id = %s", (user,))
            assert (row["outcome"], row["error_code"]) == ("failed", QuotaExceeded.code)


async def test_a_probes_and_a_previews_resends_are_charged(setup: Setup, db: Conn) -> None:
    made = await enrolment(setup.ctx, db, provider="elevenlabs")
    # The probe sentence, when the enrolment ends: refused three times, spoken on the fourth send.
    setup.provider.faults.fail_next(FAILED_503, times=3)
    assert (await process_attempt(setup.ctx, made["attempt"], "worker-1")).status == "ready"
    probe = setup.received()
    db.execute(
        "update voice_clone_attempts set runtime_status = 'synced', preview_status = 'pending' where id = %s",
        (made["attempt"],),
    )
    setup.provider.faults.fail_next(LOST)
    setup.provider.faults.fail_next(FAILED_503, times=2)
    assert (await process_preview(setup.ctx, made["attempt"])).status == "ready"

    ledger = ledger_of(db, made["owner"])
    assert [(row["kind"], row["sends"]) for row in ledger] == [("probe", 4), ("preview", 4)]
    assert ledger[0]["characters"] == probe
    assert charged(db, made["owner"]) == counted(db, made["owner"]) == setup.received()


async def test_an_opening_whose_commit_went_unanswered_is_undone_once_the_database_answers(
    setup: Setup, db: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The opening's row and reservation committed, and the answer never came (the database hung as it committed):
    the request is refused 503 and the stream never spoke; the ledger gives the reservation back and ends the row."""
    user = create_user(db)
    voice = cloned_voice(db, setup.provider, user)
    commit_with = units.commit_with

    async def committed_unanswered(*args: Any) -> Any:
        await commit_with(*args)
        raise DatabaseUnavailable

    monkeypatch.setattr("backend.usage.ledger.commit_with", committed_unanswered)
    with pytest.raises(DatabaseUnavailable):
        await setup.speech().voice_speech(
            claims_of(user), VoiceSpeechRequest(voice_id=uuid.UUID(voice), text="Never spoken."), ended=lambda: None
        )
    monkeypatch.undo()
    await setup.ctx.ledger.aclose()  # what it had to write, written

    assert setup.received() == 0
    assert ledger_of(db, user) == []
    assert counted(db, user) == 0
    row = one(db, "select outcome, error_code from speech_streams where owner_id = %s", (user,))
    assert (row["outcome"], row["error_code"]) == ("failed", DatabaseUnavailable.code)


async def test_what_the_ledger_writes_later_for_a_user_erased_meanwhile_is_moot_not_an_unseen_crash(
    setup: Setup, db: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    """What the ledger writes once the database answers, for a user erased meanwhile: their ledger went with them. A
    release gives back nothing and is done; a write that meets their account gone says so and ends. Before, the
    release made their usage counter again, met the foreign key, and its task died with an exception nobody
    retrieved."""
    caplog.set_level(logging.INFO, logger="backend.usage.charge")
    user = create_user(db)
    call = usage_ledger.Call(
        owner_id=user,
        provider="elevenlabs",
        model=None,
        kind=usage_ledger.UsageKind.STREAM,
        work_id=uuid.uuid4(),
        call_key="0",
        characters=12,
    )
    async with setup.ctx.db.service_transaction() as conn:
        await setup.ctx.ledger.reserve(conn, call)
    db.execute("delete from auth.users where id = %s", (user,))
    ledger = setup.ctx.ledger

    async def release(conn: Any) -> None:
        await usage_ledger.release(conn, call, None, ledger.quota)

    async def reserve_again(conn: Any) -> None:
        await usage_ledger.reserve(conn, msgspec.structs.replace(call, call_key="1"), ledger.quota)

    ledger.later("the release", release)
    ledger.later("a reservation", reserve_again)
    await ledger.aclose()

    assert "usage: the release written once the database took it" in caplog.text
    assert "usage: a reservation is moot: its user is gone" in caplog.text
    assert "lost" not in caplog.text
    assert counted(db, user) == 0
