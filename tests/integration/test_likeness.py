"""The likeness of a voice (issue 46) on a real database, the Storage stand-in and the `local` provider, from
real speech (two LibriSpeech clips of one speaker): judged on a probe the provider speaks as the enrolment
ends, shown in the voice JSON, the reflection's mirror and the manifest; judged again for a re-enrolment;
taken from the preview with VOICEGATE_LIKENESS_PROBE=off; and a probe the provider cannot speak leaves the
voice ready with no likeness and the reason."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.cursor_async import AsyncCursor

from backend import queues
from backend.auth.verify import UserClaims
from backend.clone import likeness, set_members
from backend.clone.likeness import PROBE_TEXTS, forget_judged_prints, probe_text
from backend.clone.manifest import BUCKET
from backend.clone.preview_step import process_preview
from backend.clone.step import process_attempt
from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.domain.attempts import AttemptSource
from backend.providers.local import provider as local_provider
from backend.records import attempts
from backend.settings import settings_from_env
from backend.storage import paths
from backend.voiceprint import THRESHOLD
from backend.voices.service import VoicesService
from devkit.db import create_user, one, seed_consent, seed_reflection
from fakes import SelfhostedFake, serve
from fakes.core import Fault
from tests.integration.conftest import open_lifecycle
from tests.support import mirror
from tests.unit.test_cpu import nice_here, tier_here

Db = psycopg.Connection[Any]
CLIPS = Path(__file__).resolve().parents[1] / "clips" / "librispeech"
SPEAKER = sorted((CLIPS / "1688").glob("*.flac"))


@pytest.fixture
async def ctx(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> AsyncIterator[WorkerContext]:
    async with open_lifecycle(cpu, db_dsn, tmp_path) as lifecycle:
        yield lifecycle


@pytest.fixture
def server() -> Iterator[tuple[SelfhostedFake, str]]:
    fake = SelfhostedFake("registry")
    with serve(fake) as url:
        yield fake, url


async def enrolment(
    ctx: WorkerContext, db: Db, provider: str = "local", owner: uuid.UUID | None = None
) -> dict[str, Any]:
    """A reflection's voice and its queued attempt enrolling two clips of one speaker (a set), with a preview."""
    owner = owner or create_user(db)
    consent = seed_consent(db, owner)
    voice = one(
        db, "insert into voices (owner_id, name, consent_id) values (%s, 'v', %s) returning id", (owner, consent)
    )["id"]
    reflection = seed_reflection(db, owner)
    samples = []
    for clip in SPEAKER:
        path = f"{owner}/{voice}/{uuid.uuid4()}/original"
        await ctx.storage.upload("voice-samples", path, clip.read_bytes(), "audio/flac")
        samples.append(
            one(
                db,
                "insert into voice_samples (owner_id, voice_id, consent_id, object_path, sniffed_type, provider,"
                " status) values (%s, %s, %s, %s, 'audio/flac', %s, 'pending') returning id",
                (owner, voice, consent, path, provider),
            )["id"]
        )
    async with ctx.db.service_transaction() as conn:
        attempt = await attempts.create(
            conn,
            owner_id=owner,
            voice_id=voice,
            provider=provider,
            source=AttemptSource.SAMPLE_UPLOAD,
            reflection_id=reflection,
            sample_id=samples[0],
            sample_ids=samples,
            preview=True,
        )
    return {"owner": owner, "voice": voice, "reflection": reflection, "attempt": attempt.id}


def likeness_of(db: Db, attempt_id: uuid.UUID) -> dict[str, Any]:
    return one(
        db,
        "select status, likeness, likeness_threshold, likeness_source, likeness_error, likeness_baseline"
        " from voice_clone_attempts where id = %s",
        (attempt_id,),
    )


def claims_of(user: uuid.UUID) -> UserClaims:
    raw = {"sub": str(user), "role": "authenticated", "aud": "authenticated"}
    return UserClaims(sub=str(user), email=None, role="authenticated", aal=None, session_id=None, raw=raw)


def watch_tiers(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[tuple[str, int]]]:
    """Where an enrolment's CPU calls run (the tier of each one's thread, and its nice value), watched, never
    replaced: the samples' print, the likeness's prints and the local voice's profile (seconds of CPU each for long
    samples), and a sample's traits for the set's report (a fraction of a second)."""
    seen: dict[str, set[tuple[str, int]]] = {}

    def watch(module: object, name: str) -> None:
        real = getattr(module, name)

        def call(*args: object) -> object:
            seen.setdefault(name, set()).add(tier_here())
            return real(*args)

        monkeypatch.setattr(module, name, call)

    for module, name in (
        (likeness, "samples_print"),
        (likeness, "_scores"),
        (local_provider, "_profile_of"),
        (set_members, "_traits_of"),
    ):
        watch(module, name)
    return seen


async def test_a_local_voice_is_judged_on_a_probe_and_shows_it_everywhere_and_again_when_enrolled_again(
    ctx: WorkerContext, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiers = watch_tiers(monkeypatch)
    made = await enrolment(ctx, db)

    assert (await process_attempt(ctx, made["attempt"], "worker-1")).status == "ready"

    judged = likeness_of(db, made["attempt"])
    assert judged["status"] == "ready"
    assert judged["likeness_source"] == "probe"
    assert judged["likeness_error"] is None
    assert judged["likeness_threshold"] == THRESHOLD
    # The offline voice is hibari's timbre at the speaker's pitch: a stranger to ECAPA-TDNN (about 0.05).
    assert -0.3 < judged["likeness"] < 0.3 < THRESHOLD
    # Beside it, the bundled voice as it ships, unadapted, against the same samples: what the clone started from.
    baseline = judged["likeness_baseline"]
    assert -0.3 < baseline < 0.3 < THRESHOLD
    assert baseline != judged["likeness"]
    expected = {
        "likeness": judged["likeness"],
        "likenessThreshold": THRESHOLD,
        "likenessSource": "probe",
        "likenessError": None,
        "likenessBaseline": baseline,
    }
    assert {key: mirror(db, made["reflection"])[key] for key in expected} == expected
    voices = VoicesService(ctx.db, ctx.storage, settings_from_env({}))  # as the API's voice routes read it
    voice = await voices.get_voice(claims_of(made["owner"]), made["voice"])
    assert (voice.likeness, voice.likeness_threshold, voice.likeness_source, voice.likeness_baseline) == (
        judged["likeness"],
        THRESHOLD,
        "probe",
        baseline,
    )
    manifest = json.loads(await ctx.storage.download(BUCKET, paths.manifest(made["owner"], made["voice"])))
    assert {key: manifest[key] for key in expected} == expected

    # Re-enrolment: a new attempt of the same samples is judged again, and the voice shows its likeness.
    async with ctx.db.service_transaction() as conn:
        again = await attempts.retry(conn, made["attempt"])
    assert likeness_of(db, again.id)["likeness"] is None
    assert (await process_attempt(ctx, again.id, "worker-2")).status == "ready"
    rejudged = likeness_of(db, again.id)
    assert rejudged["likeness_source"] == "probe"
    assert -0.3 < rejudged["likeness"] < 0.3 < THRESHOLD
    assert mirror(db, made["reflection"])["attemptId"] == str(again.id)
    assert mirror(db, made["reflection"])["likeness"] == rejudged["likeness"]
    assert (await voices.get_voice(claims_of(made["owner"]), made["voice"])).likeness == rejudged["likeness"]
    # Long calls a queue's consumer makes (`backend.cpu.long_calls(queued=True)`), in a tier of their own: no other
    # user's short work, nor their reading, waits behind one.
    ours = nice_here()
    assert tiers == {
        "samples_print": {("queued", ours)},
        "_scores": {("queued", ours)},
        "_profile_of": {("queued", ours)},
        "_traits_of": {("first", ours)},
    }


async def test_the_samples_print_is_erased_once_the_likeness_is_judged_and_kept_until_then(
    ctx: WorkerContext, db: Db
) -> None:
    # Biometric data is kept no longer than its use: the maintenance sweep erases what judging no longer needs.
    judged, waiting = await enrolment(ctx, db), await enrolment(ctx, db)
    assert (await process_attempt(ctx, judged["attempt"], "worker-1")).status == "ready"
    assert likeness_of(db, judged["attempt"])["likeness"] is not None
    db.execute("update voice_clone_attempts set sample_voiceprint = %s where id = %s", (bytes(768), waiting["attempt"]))

    async with ctx.db.service_transaction() as conn:
        erased = await forget_judged_prints(conn, limit=500)

    prints = {
        row[0]: row[1]
        for row in db.execute(
            "select id, sample_voiceprint is not null from voice_clone_attempts where id = any(%s)",
            ([judged["attempt"], waiting["attempt"]],),
        )
    }
    assert erased >= 1
    assert prints == {judged["attempt"]: False, waiting["attempt"]: True}, "an attempt not judged yet keeps its print"


async def lease(ctx: WorkerContext, attempt_id: uuid.UUID) -> dict[str, Any]:
    """The attempt as the clone queue's read leases it to `worker-1`, with its message."""
    async with ctx.db.service_transaction() as conn:
        rows = await attempts.read_and_lease(
            conn, queues.CLONE, vt=30, qty=100, lease_owner="worker-1", lease_seconds=60
        )
    [leased] = [row["leased"] for row in rows if row["message"]["attemptId"] == str(attempt_id)]
    return dict(leased)


async def test_a_leased_attempt_is_judged_on_what_its_lease_read_handed_unless_its_run_enrolled(
    ctx: WorkerContext, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await enrolment(ctx, db)
    leased = await lease(ctx, made["attempt"])
    assert leased["likeness_probe"]["samples_print"] is None, "not enrolled yet"

    # The run enrols, recording the samples' print: the probe reads it, not the lease's none.
    outcome = await process_attempt(ctx, made["attempt"], "worker-1", leased=leased, read_at=time.monotonic())
    assert outcome.status == "ready"
    first = likeness_of(db, made["attempt"])
    assert (first["likeness_source"], first["likeness_error"]) == ("probe", None)
    assert -0.3 < first["likeness"] < 0.3 < THRESHOLD

    # An attempt that enrolled on an earlier try (its provider voice and print recorded, back in the queue):
    # judged on the print its lease's read handed over, with no read of its own.
    async with ctx.db.service_transaction() as conn:
        again = await attempts.retry(conn, made["attempt"])
    db.execute(
        "update voice_clone_attempts n set provider_voice_id = o.provider_voice_id,"
        " sample_voiceprint = o.sample_voiceprint from voice_clone_attempts o where n.id = %s and o.id = %s",
        (again.id, made["attempt"]),
    )
    leased = await lease(ctx, again.id)
    sent: list[str] = []
    execute = AsyncCursor.execute

    async def spy(cursor: AsyncCursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return await execute(cursor, query, *args, **kwargs)

    monkeypatch.setattr(AsyncCursor, "execute", spy)
    outcome = await process_attempt(ctx, again.id, "worker-1", leased=leased, read_at=time.monotonic())
    monkeypatch.undo()
    assert outcome.status == "ready"
    assert likeness_of(db, again.id)["likeness"] == first["likeness"], "the same voice, judged on the same print"
    assert [query for query in sent if "sample_voiceprint" in query] == [], "the probe read nothing"


async def test_with_the_probe_off_the_preview_is_judged_instead(ctx: WorkerContext, db: Db) -> None:
    off = dataclasses.replace(ctx, likeness_probe=False)
    made = await enrolment(off, db)

    assert (await process_attempt(off, made["attempt"], "worker-1")).status == "ready"
    before = likeness_of(db, made["attempt"])
    assert (before["likeness"], before["likeness_source"], before["likeness_error"]) == (None, None, None)
    assert mirror(db, made["reflection"])["likeness"] is None

    assert (await process_preview(off, made["attempt"])).status == "ready"

    judged = likeness_of(db, made["attempt"])
    assert (judged["likeness_source"], judged["likeness_threshold"]) == ("preview", THRESHOLD)
    assert -0.3 < judged["likeness"] < 0.3 < THRESHOLD
    assert mirror(db, made["reflection"])["likeness"] == judged["likeness"]


async def test_a_probe_the_provider_cannot_speak_leaves_the_voice_ready_without_a_likeness(
    cpu: CpuExecutor, db_dsn: str, tmp_path: Path, db: Db, server: tuple[SelfhostedFake, str]
) -> None:
    fake, url = server
    async with open_lifecycle(cpu, db_dsn, tmp_path, SELFHOSTED_BASE_URL=url) as ctx:
        made = await enrolment(ctx, db, provider="selfhosted")
        fake.faults.fail_next(Fault("status", 500, method="POST", path_prefix="/v1/audio/speech"), times=10)

        assert (await process_attempt(ctx, made["attempt"], "worker-1")).status == "ready"
        fake.faults.clear()

    judged = likeness_of(db, made["attempt"])
    assert (judged["status"], judged["likeness"], judged["likeness_error"]) == ("ready", None, "probe_failed")
    assert [speech["input"] for speech in fake.speeches] == []
    assert mirror(db, made["reflection"])["likenessError"] == "probe_failed"
    assert mirror(db, made["reflection"])["cloneStatus"] == "ready"


def test_the_probe_is_a_short_sentence_in_the_voices_own_language() -> None:
    assert all(len(text) <= 80 for text in PROBE_TEXTS.values())
    assert probe_text("en-GB") == probe_text(None) == PROBE_TEXTS["en"]
    assert probe_text("zh-Hans") == PROBE_TEXTS["zh"]
    assert probe_text("fi") is None, "a voice is never made to speak a language that is not its own"


async def test_the_enrolment_the_probe_and_the_preview_are_each_written_to_the_usage_ledger(
    cpu: CpuExecutor, db_dsn: str, tmp_path: Path, db: Db, server: tuple[SelfhostedFake, str]
) -> None:
    fake, url = server
    async with open_lifecycle(cpu, db_dsn, tmp_path, SELFHOSTED_BASE_URL=url) as ctx:
        made = await enrolment(ctx, db, provider="selfhosted")
        assert (await process_attempt(ctx, made["attempt"], "worker-1")).status == "ready"
        assert (await process_preview(ctx, made["attempt"])).status == "ready"

    rows = db.execute(
        "select kind, provider, characters from voicegate.usage_events where work_id = %s order by id",
        (made["attempt"],),
    ).fetchall()
    sent = [speech["input"] for speech in fake.speeches]
    assert [(kind, provider) for kind, provider, _ in rows] == [
        ("enrolment", "selfhosted"),
        ("probe", "selfhosted"),
        ("preview", "selfhosted"),
    ]
    assert [characters for _, _, characters in rows] == [0, *(len(text) for text in sent)]


async def test_a_probe_and_a_preview_past_their_owners_quota_are_not_spoken_and_the_voice_goes_on(
    cpu: CpuExecutor, db_dsn: str, tmp_path: Path, db: Db, server: tuple[SelfhostedFake, str]
) -> None:
    fake, url = server
    async with open_lifecycle(cpu, db_dsn, tmp_path, SELFHOSTED_BASE_URL=url, VOICEGATE_USER_CHARACTERS="5") as ctx:
        made = await enrolment(ctx, db, provider="selfhosted")
        assert (await process_attempt(ctx, made["attempt"], "worker-1")).status == "ready"
        assert (await process_preview(ctx, made["attempt"])).status == "pending"

    judged = likeness_of(db, made["attempt"])
    assert (judged["status"], judged["likeness"], judged["likeness_error"]) == ("ready", None, "probe_failed")
    assert fake.speeches == []
    preview = db.execute(
        "select last_error_code from voice_clone_attempts where id = %s", (made["attempt"],)
    ).fetchone()
    assert preview == ("quota_exceeded",)
    kinds = db.execute("select kind from voicegate.usage_events where work_id = %s", (made["attempt"],)).fetchall()
    assert kinds == [("enrolment",)]
