"""Erasing a user (the `user_erasure` consumer's step after their auth.users row is deleted, by Supabase Auth or by
`voicegate ops erase-user --apply`): afterwards no table, bucket or provider fake holds anything of theirs, the
audit trail keeps a tombstone that names nobody, and the erasure has a receipt. A step that dies between two items
resumes with the next one; a provider that refuses is reported, never skipped; a second erasure changes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.erasure.step import MAX_ROUNDS, process_erasure
from backend.providers.base import VoiceProvider
from backend.providers.elevenlabs import KEY_LABEL
from backend.providers.registry import ProviderSet
from devkit.db import create_user, one, seed_consent
from fakes import CartesiaFake, ElevenLabsFake, QwenFake, serve
from fakes.cartesia import CartesiaVoice
from fakes.core import Fault
from fakes.elevenlabs import ElevenVoice
from fakes.qwen import QwenVoice
from scripts import erase_user as erase_user_script
from scripts import erasures as erasures_script
from tests.integration.conftest import open_lifecycle
from tests.provider_support import CARTESIA_KEY, ELEVEN_KEY, QWEN_KEY
from tests.support import rows_naming, seed_voice, stored_files

Conn = psycopg.Connection[Any]
PROVIDERS = ("elevenlabs", "cartesia", "qwen")
#: How long the erasure of a user with 20 voices at 3 providers and 100 clips may take, once its message is read.
ERASURE_SECONDS = 60


@dataclass
class Fakes:
    eleven: ElevenLabsFake
    cartesia: CartesiaFake
    qwen: QwenFake
    env: dict[str, str] = field(default_factory=dict)

    def held(self, provider: str) -> set[str]:
        """The voice ids the provider's fake holds."""
        fake = {"elevenlabs": self.eleven, "cartesia": self.cartesia, "qwen": self.qwen}[provider]
        return set(fake.voices)

    def add(self, provider: str, voice_id: str) -> None:
        if provider == "elevenlabs":
            self.eleven.voices[voice_id] = ElevenVoice(voice_id, "v", None, {}, [])
        elif provider == "cartesia":
            self.cartesia.voices[voice_id] = CartesiaVoice(voice_id, "v", None, "en")
        else:
            self.qwen.voices[voice_id] = QwenVoice(voice_id, "qwen3-tts-vc-realtime", "en", _now(), "upload")

    def deletes(self) -> int:
        return (
            len(self.eleven.requests_to("DELETE", "/v1/voices/"))
            + len(self.cartesia.requests_to("DELETE", "/voices/"))
            + sum(1 for r in self.qwen.requests_to("POST", "/") if b'"delete"' in r.body)
        )


def _now() -> Any:
    from datetime import UTC, datetime  # noqa: PLC0415

    return datetime.now(UTC)


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    eleven, cartesia, qwen = ElevenLabsFake(ELEVEN_KEY, max_voices=1000), CartesiaFake(CARTESIA_KEY), QwenFake(QWEN_KEY)
    with serve(eleven) as eleven_url, serve(cartesia) as cartesia_url, serve(qwen) as qwen_url:
        env = {
            "ELEVENLABS_API_KEY": ELEVEN_KEY,
            "ELEVENLABS_BASE_URL": eleven_url,
            "CARTESIA_API_KEY": CARTESIA_KEY,
            "CARTESIA_BASE_URL": cartesia_url,
            "DASHSCOPE_API_KEY": QWEN_KEY,
            "QWEN_REGION": "intl",
            "DASHSCOPE_BASE_URL": qwen_url,
        }
        yield Fakes(eleven, cartesia, qwen, env)


@pytest.fixture
async def ctx(cpu: CpuExecutor, db_dsn: str, tmp_path: Path, fakes: Fakes) -> AsyncIterator[WorkerContext]:
    async with open_lifecycle(cpu, db_dsn, tmp_path, **fakes.env) as lifecycle:
        yield lifecycle


@pytest.fixture
def sql(db_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        yield conn


@dataclass(frozen=True)
class Seeded:
    user: uuid.UUID
    voices: dict[str, list[str]]
    objects: list[tuple[str, str]]


async def seed_user(ctx: WorkerContext, sql: Conn, fakes: Fakes, *, voices: int, clips: int) -> Seeded:
    """A user with `voices` voices spread over the three provider fakes (each made by an attempt, some named by
    their voice row and a reference too) and `clips` samples with their objects, renders, a consent recording and a
    stray file in their folder; a webhook endpoint, an idempotency key and audit events about their rows."""
    user = create_user(sql)
    consent = seed_consent(sql, user)
    held: dict[str, list[str]] = {name: [] for name in PROVIDERS}
    objects: list[tuple[str, str]] = []
    voice_ids = []
    for n in range(voices):
        provider = PROVIDERS[n % len(PROVIDERS)]
        provider_voice = f"erase-{provider}-{uuid.uuid4().hex[:12]}"
        fakes.add(provider, provider_voice)
        held[provider].append(provider_voice)
        voice = seed_voice(sql, user)
        voice_ids.append(voice)
        attempt = one(
            sql,
            "insert into voice_clone_attempts (owner_id, voice_id, provider, source, preview_required,"
            " provider_voice_id) values (%s, %s, %s, 'custom_voice_id', false, %s) returning id",
            (user, voice, provider, provider_voice),
        )["id"]
        sql.execute(
            "insert into voicegate.audit_events (actor, action, subject_type, subject_id, detail)"
            " values ('test', 'attempt.adopt', 'attempt', %s, %s)",
            (str(attempt), json.dumps({"provider_voice_id": provider_voice})),
        )
        if n % 2 == 0:
            sql.execute(
                "update voices set tts_provider = %s, provider_voice_id = %s where id = %s",
                (provider, provider_voice, voice),
            )
    for n in range(clips):
        sample = uuid.uuid4()
        path = f"{user}/samples/{sample}/original"
        await ctx.storage.upload("voice-samples", path, b"RIFF" + bytes(64), "audio/wav")
        objects.append(("voice-samples", path))
        sql.execute(
            "insert into voice_samples (id, owner_id, voice_id, consent_id, object_path, status)"
            " values (%s, %s, %s, %s, %s, 'ready')",
            (sample, user, voice_ids[n % len(voice_ids)], consent, path),
        )
        if n % 5 == 0:
            render = f"{user}/renders/{uuid.uuid4()}.wav"
            await ctx.storage.upload("voice-renders", render, b"RIFF" + bytes(32), "audio/wav")
            objects.append(("voice-renders", render))
    stray = f"{user}/stray/notes.wav"
    await ctx.storage.upload("voice-samples", stray, b"RIFF" + bytes(16), "audio/wav")
    objects.append(("voice-samples", stray))
    endpoint = one(
        sql,
        "insert into webhook_endpoints (owner_id, url, events) values (%s, 'https://hooks.example.com/x',"
        " array['voice.ready']) returning id",
        (user,),
    )["id"]
    sql.execute("insert into voicegate.webhook_secrets (endpoint_id, secret) values (%s, 'whsec_abc')", (endpoint,))
    sql.execute(
        "insert into voicegate.idempotency_keys (owner_id, route, key, fingerprint, claim_token, expires_at)"
        " values (%s, 'POST /v1/reflections', 'k1', repeat('a', 64), gen_random_uuid(), now() + interval '1 day')",
        (user,),
    )
    sql.execute(
        "insert into voicegate.audit_events (actor, action, subject_type, subject_id, detail)"
        " values ('test', 'storage.orphan_remove', 'storage_object', gen_random_uuid()::text, %s)",
        (json.dumps({"name": stray}),),
    )
    return Seeded(user, held, objects)


def erasure_of(sql: Conn, user: uuid.UUID) -> dict[str, Any]:
    return one(sql, "select * from voicegate.erasures where user_id = %s", (user,))


async def test_an_erased_user_leaves_nothing_behind(
    ctx: WorkerContext, sql: Conn, fakes: Fakes, tmp_path: Path
) -> None:
    seeded = await seed_user(ctx, sql, fakes, voices=20, clips=100)
    other = await seed_user(ctx, sql, fakes, voices=3, clips=2)
    assert stored_files(tmp_path / "storage", seeded.user)

    # As Supabase Auth's admin deleteUser does: the row, and nothing else.
    sql.execute("delete from auth.users where id = %s", (seeded.user,))
    erasure = erasure_of(sql, seeded.user)
    assert erasure["requested_by"].startswith("database:")
    assert (
        one(
            sql,
            "select count(*) as n from pgmq.q_user_erasure where message ->> 'erasureId' = %s",
            (str(erasure["id"]),),
        )["n"]
        == 1
    )
    started = time.monotonic()
    outcome = await process_erasure(ctx, erasure["id"])
    elapsed = time.monotonic() - started

    assert outcome.status == "done", outcome
    for provider in PROVIDERS:
        assert fakes.held(provider).isdisjoint(seeded.voices[provider]), provider
        assert set(other.voices[provider]) <= fakes.held(provider), provider
    assert rows_naming(sql, seeded.user) == {}
    assert stored_files(tmp_path / "storage", seeded.user) == []
    for bucket, name in seeded.objects:
        assert await ctx.storage.info(bucket, name) is None
    for bucket, name in other.objects:
        assert await ctx.storage.info(bucket, name) is not None
    assert rows_naming(sql, other.user) != {}
    finished = erasure_of(sql, seeded.user)
    assert finished["state"] == "done"
    receipt = finished["receipt"]
    assert receipt["providerVoices"] == {"deleted": 20}
    assert receipt["objects"] == {"deleted": len(seeded.objects)}
    assert receipt["rows"]["voices"] == 20
    assert receipt["rows"]["voice_samples"] == 100
    assert receipt["refused"] == []
    assert len(receipt["keptElsewhere"]) == 3
    tombstone = one(sql, "select * from voicegate.audit_events where action = 'user.erase'")
    assert tombstone["subject_id"] == str(erasure["id"])
    assert str(seeded.user) not in json.dumps(tombstone, default=str)
    assert tombstone["detail"]["provider_voices"] == {"deleted": 20}
    print(f"erased 20 voices at 3 providers and {len(seeded.objects)} objects in {elapsed:.2f} s")
    assert elapsed < ERASURE_SECONDS

    # Read twice (a second delivery, or a second erase): nothing more is done.
    deletes = fakes.deletes()
    assert (await process_erasure(ctx, erasure["id"])).status == "done"
    assert fakes.deletes() == deletes
    assert one(sql, "select count(*) as n from voicegate.audit_events where action = 'user.erase'")["n"] == 1


class _Killed(BaseException):
    """The worker dying where it stands (no handler runs, nothing after it is written)."""


class _DyingProviders(ProviderSet):
    """The lifecycle's providers, dying at the `die_at`-th delete."""

    def __init__(self, inner: ProviderSet, die_at: int) -> None:
        self._inner = inner
        self.calls = 0
        self.die_at = die_at

    def get(self, name: str, *, owner: Any = None) -> VoiceProvider:
        adapter = self._inner.get(name, owner=owner)
        parent = self

        class Dying:
            def __getattr__(self, attr: str) -> Any:
                return getattr(adapter, attr)

            async def delete(self, voice_id: str) -> None:
                parent.calls += 1
                if parent.calls == parent.die_at:
                    raise _Killed
                await adapter.delete(voice_id)

        return Dying()  # type: ignore[return-value]


async def test_a_step_that_dies_mid_way_resumes_where_it_stopped(ctx: WorkerContext, sql: Conn, fakes: Fakes) -> None:
    seeded = await seed_user(ctx, sql, fakes, voices=6, clips=4)
    sql.execute("delete from auth.users where id = %s", (seeded.user,))
    erasure = erasure_of(sql, seeded.user)

    with pytest.raises(_Killed):
        await process_erasure(
            dataclasses.replace(ctx, providers=_DyingProviders(ctx.providers, die_at=4)), erasure["id"]
        )

    states = dict(
        sql.execute(
            "select state, count(*) from voicegate.erasure_items where erasure_id = %s group by state", (erasure["id"],)
        ).fetchall()
    )
    assert states == {"deleted": 3, "pending": 3 + len(seeded.objects)}
    assert erasure_of(sql, seeded.user)["state"] == "working"
    assert fakes.deletes() == 3

    assert (await process_erasure(ctx, erasure["id"])).status == "done"
    assert fakes.deletes() == 6, "each voice deleted once: the three done before were not asked again"
    assert rows_naming(sql, seeded.user) == {}


async def test_a_provider_that_refuses_is_reported(
    ctx: WorkerContext, sql: Conn, fakes: Fakes, db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = await seed_user(ctx, sql, fakes, voices=3, clips=2)
    fakes.eleven.faults.fail_next(Fault("status", 403, method="DELETE"))
    sql.execute("delete from auth.users where id = %s", (seeded.user,))
    erasure = erasure_of(sql, seeded.user)

    assert (await process_erasure(ctx, erasure["id"])).status == "incomplete"

    finished = erasure_of(sql, seeded.user)
    refused = finished["receipt"]["refused"]
    assert [(r["kind"], r["target"], r["ref"]) for r in refused] == [
        ("provider_voice", "elevenlabs", seeded.voices["elevenlabs"][0])
    ]
    assert "HTTP 403" in refused[0]["error"]
    # The operator sees it: the erasure is a problem (exit 1), its refused item listed with why.
    shown = await asyncio.to_thread(erasures_script.main, [str(erasure["id"]), "--json", "--database-url", db_dsn])
    assert shown == 1
    items = json.loads(capsys.readouterr().out)["items"]
    assert [(i["target"], i["state"]) for i in items] == [("elevenlabs", "refused")]
    assert finished["receipt"]["providerVoices"] == {"deleted": 2, "refused": 1}
    assert seeded.voices["elevenlabs"][0] in fakes.held("elevenlabs")
    # Everything else went all the same.
    assert fakes.held("cartesia").isdisjoint(seeded.voices["cartesia"])
    assert finished["receipt"]["objects"] == {"deleted": len(seeded.objects)}


async def test_the_operator_command_erases_through_the_same_trigger(
    ctx: WorkerContext, sql: Conn, fakes: Fakes, db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = await seed_user(ctx, sql, fakes, voices=3, clips=2)
    email = one(sql, "select email from auth.users where id = %s", (seeded.user,))["email"]

    assert (
        await asyncio.to_thread(erase_user_script.main, [email, "--json", "--database-url", db_dsn, "--no-progress"])
        == 0
    )
    dry = json.loads(capsys.readouterr().out)
    assert dry["counts"]["provider_voices"] == 3
    assert dry["counts"]["objects"] == len(seeded.objects)
    assert one(sql, "select count(*) as n from auth.users where id = %s", (seeded.user,))["n"] == 1

    assert (
        await asyncio.to_thread(
            erase_user_script.main, [email, "--apply", "--json", "--database-url", db_dsn, "--actor", "ops:test"]
        )
        == 0
    )
    applied = json.loads(capsys.readouterr().out)
    assert applied["counts"]["erased"] == 1
    assert one(sql, "select count(*) as n from auth.users where id = %s", (seeded.user,))["n"] == 0
    erasure = erasure_of(sql, seeded.user)
    assert erasure["requested_by"] == "ops:test"
    assert (await process_erasure(ctx, erasure["id"])).status == "done"

    # A second erase of the same user (by id: the address went with them) answers the existing erasure.
    again = [str(seeded.user), "--apply", "--json", "--database-url", db_dsn]
    assert await asyncio.to_thread(erase_user_script.main, again) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["counts"]["already_erased"] == 1
    assert second["counts"]["erased"] == 0
    assert any(str(erasure["id"]) in note for note in second["notes"])
    assert one(sql, "select count(*) as n from voicegate.erasures where user_id = %s", (seeded.user,))["n"] == 1

    # The operator's view: the list, and the one erasure with its receipt (by its id or its user's).
    assert await asyncio.to_thread(erasures_script.main, ["--json", "--database-url", db_dsn]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(item["id"], item["state"]) for item in listed["items"]] == [(str(erasure["id"]), "done")]
    # What went is counted from the receipt (its items are pruned once closed): it said 0 items before.
    assert listed["items"][0]["items"] == 3 + len(seeded.objects)
    assert listed["counts"]["done"] == 1
    shown = [str(seeded.user), "--json", "--database-url", db_dsn]
    assert await asyncio.to_thread(erasures_script.main, shown) == 0
    receipt = json.loads(capsys.readouterr().out)
    assert receipt["items"] == []
    assert 'receipt providerVoices: {"deleted":3}' in receipt["notes"]
    # The table keeps each note on one line, however long (it was cut at 200 characters, mid-name).
    assert await asyncio.to_thread(erasures_script.main, [str(seeded.user), "--database-url", db_dsn]) == 0
    table = capsys.readouterr().out
    notes = [line for line in table.splitlines() if line.startswith("note: ")]
    assert notes == [f"note: {note}" for note in receipt["notes"]]
    assert max(len(line) for line in notes) > 200, "a long note is kept whole"


def test_the_trigger_snapshots_before_the_cascade(sql: Conn) -> None:
    """Nothing of a user with no voice and no object is queued for deletion, but the erasure is still written (its
    receipt says so)."""
    user = create_user(sql)
    sql.execute("delete from auth.users where id = %s", (user,))
    with sql.cursor(row_factory=dict_row) as cur:
        cur.execute("select * from voicegate.erasures where user_id = %s", (user,))
        erasure = cur.fetchone()
    assert erasure is not None
    assert erasure["state"] == "pending"
    assert (
        one(sql, "select count(*) as n from voicegate.erasure_items where erasure_id = %s", (erasure["id"],))["n"] == 0
    )


async def test_a_provider_that_does_not_answer_is_asked_again_later(
    ctx: WorkerContext, sql: Conn, fakes: Fakes
) -> None:
    seeded = await seed_user(ctx, sql, fakes, voices=3, clips=1)
    # Every try the adapter makes inline (it retries a 503 itself) fails: the step's own retry takes over.
    fakes.cartesia.faults.fail_next(Fault("status", 503, method="DELETE"), times=4)
    sql.execute("delete from auth.users where id = %s", (seeded.user,))
    erasure = erasure_of(sql, seeded.user)

    first = await process_erasure(ctx, erasure["id"])

    assert first.status == "working"
    assert first.retry_at is not None
    item = one(
        sql,
        "select state, tries, last_error from voicegate.erasure_items where erasure_id = %s and target = 'cartesia'",
        (erasure["id"],),
    )
    assert (item["state"], item["tries"]) == ("pending", 1)
    assert "HTTP 503" in item["last_error"]
    assert erasure_of(sql, seeded.user)["state"] == "working"

    assert (await process_erasure(ctx, erasure["id"])).status == "done"
    assert fakes.held("cartesia").isdisjoint(seeded.voices["cartesia"])
    assert erasure_of(sql, seeded.user)["receipt"]["providerVoices"] == {"deleted": 3}


class _LyingStorage:
    """Storage whose delete answers that it deleted the objects, and deletes none (as `supabase storage rm` can)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def remove(self, bucket: str, paths: list[str]) -> list[str]:
        return list(paths)


async def test_an_object_counts_as_gone_only_once_it_reads_back_as_gone(
    ctx: WorkerContext, sql: Conn, fakes: Fakes
) -> None:
    seeded = await seed_user(ctx, sql, fakes, voices=1, clips=2)
    sql.execute("delete from auth.users where id = %s", (seeded.user,))
    erasure = erasure_of(sql, seeded.user)

    lied_to = await process_erasure(dataclasses.replace(ctx, storage=_LyingStorage(ctx.storage)), erasure["id"])

    assert lied_to.status == "working"
    pending = sql.execute(
        "select count(*) from voicegate.erasure_items where erasure_id = %s and kind = 'object' and state = 'pending'"
        " and last_error = 'still there when read back after its delete'",
        (erasure["id"],),
    ).fetchone()
    assert pending == (len(seeded.objects),)
    for bucket, name in seeded.objects:
        assert await ctx.storage.info(bucket, name) is not None

    assert (await process_erasure(ctx, erasure["id"])).status == "done"
    for bucket, name in seeded.objects:
        assert await ctx.storage.info(bucket, name) is None


def delete_user(dsn: str, user: uuid.UUID) -> None:
    """Delete the user's auth.users row, as Supabase Auth does, on a connection of its own."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("delete from auth.users where id = %s", (user,))


def waiting_on_advisory_lock(sql: Conn) -> bool:
    """Whether a backend waits for an advisory lock (the erasure waiting for a write into its user's folder)."""
    row = sql.execute(
        "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and wait_event = 'advisory'"
    ).fetchone()
    return bool(row and row[0])


def test_a_write_under_way_is_waited_for_and_one_meeting_the_erasure_is_refused_at_once(sql: Conn, db_dsn: str) -> None:
    user = create_user(sql)
    late = f"{user}/renders/late.wav"
    with psycopg.connect(db_dsn) as writer, ThreadPoolExecutor(1) as pool:
        writer.execute("insert into storage.objects (bucket_id, name) values ('voice-renders', %s)", (late,))
        deleted = pool.submit(delete_user, db_dsn, user)
        deadline = time.monotonic() + 10
        while not waiting_on_advisory_lock(sql):
            assert time.monotonic() < deadline, "the erasure never waited for the write"
            assert not deleted.done(), deleted.result()
            time.sleep(0.01)
        writer.commit()
        deleted.result(timeout=10)
    erasure = erasure_of(sql, user)
    items = sql.execute(
        "select kind, target, ref from voicegate.erasure_items where erasure_id = %s", (erasure["id"],)
    ).fetchall()
    assert ("object", "voice-renders", late) in items

    other = create_user(sql)
    with psycopg.connect(db_dsn) as eraser:
        eraser.execute("delete from auth.users where id = %s", (other,))
        with psycopg.connect(db_dsn, autocommit=True) as writer:
            writer.execute("set statement_timeout = '5s'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                writer.execute(
                    "insert into storage.objects (bucket_id, name) values ('voice-renders', %s)", (f"{other}/x.wav",)
                )
        eraser.rollback()
    # Rolled back, the erasure never was: the folder takes writes again.
    sql.execute("insert into storage.objects (bucket_id, name) values ('voice-renders', %s)", (f"{other}/y.wav",))


def waiting_on_a_row(sql: Conn) -> bool:
    """Whether a backend waits for a row another transaction holds."""
    row = sql.execute(
        "select count(*) from pg_stat_activity"
        " where wait_event_type = 'Lock' and wait_event in ('transactionid', 'tuple')"
    ).fetchone()
    return bool(row and row[0])


def test_the_operator_command_waits_for_the_users_work_on_a_voice_instead_of_deadlocking_with_it(
    sql: Conn, db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The user's own work locks one of their voices, then writes a row that names the user, whose foreign key
    waits for the auth.users row the erasure deletes: the command takes the user's voices first, so it waits for
    that work to commit and then erases, at its first try (deleting the user first, the two deadlocked and the
    erasure was rolled back, up to every try while the user kept working)."""
    user = create_user(sql)
    voice = one(sql, "insert into public.voices (owner_id, name) values (%s, 'v') returning id", (user,))["id"]
    with psycopg.connect(db_dsn) as work, ThreadPoolExecutor(1) as pool:
        work.execute("update public.voices set name = 'w' where id = %s", (voice,))
        erased = pool.submit(erase_user_script.main, [str(user), "--apply", "--json", "--database-url", db_dsn])
        deadline = time.monotonic() + 10
        while not waiting_on_a_row(sql):
            assert time.monotonic() < deadline, "the erasure never waited for the voice"
            assert not erased.done(), erased.result()
            time.sleep(0.01)
        work.execute("insert into public.voices (owner_id, name) values (%s, 'x')", (user,))
        work.commit()
        assert erased.result(timeout=30) == 0
    applied = json.loads(capsys.readouterr().out)
    assert applied["counts"]["erased"] == 1
    assert [note for note in applied["notes"] if "met the user's own work" in note] == []
    assert one(sql, "select count(*) as n from public.voices where owner_id = %s", (user,))["n"] == 0


async def test_a_voice_made_while_the_user_was_erased_is_found_by_its_key_once_their_work_has_stopped(
    ctx: WorkerContext, sql: Conn, fakes: Fakes
) -> None:
    user = create_user(sql)
    voice = seed_voice(sql, user)
    attempt = one(
        sql,
        "insert into voice_clone_attempts (owner_id, voice_id, provider, source, preview_required)"
        " values (%s, %s, 'elevenlabs', 'sample_upload', false) returning id",
        (user, voice),
    )["id"]
    # A worker has read its message and holds its lease; its create reaches the provider, its answer never the row.
    sql.execute(
        "update pgmq.q_voice_clone_process set read_ct = 1, vt = now() + interval '1 minute'"
        " where message ->> 'attemptId' = %s",
        (str(attempt),),
    )
    sql.execute(
        "update voice_clone_attempts set lease_owner = 'worker-1', lease_expires_at = now() + interval '1 minute'"
        " where id = %s",
        (attempt,),
    )
    fakes.eleven.voices["made-late"] = ElevenVoice("made-late", "v", None, {KEY_LABEL: f"vg-{attempt}"}, [])
    sql.execute("delete from auth.users where id = %s", (user,))
    erasure = erasure_of(sql, user)
    assert erasure["in_flight"] == 2
    # Its queued work is cancelled with the delete.
    assert one(sql, "select count(*) as n from pgmq.q_voice_clone_process")["n"] == 0

    waiting = await process_erasure(ctx, erasure["id"])

    assert waiting.status == "working"
    assert waiting.retry_at is not None
    assert (waiting.retry_at - datetime.now(UTC)).total_seconds() > ctx.lease_seconds / 2
    assert "made-late" in fakes.held("elevenlabs"), "looked up before the work in flight had stopped"
    # The leases it waits for run out.
    sql.execute("update voicegate.erasures set settle_at = now() where id = %s", (erasure["id"],))
    assert (await process_erasure(ctx, erasure["id"])).status == "done"
    assert "made-late" not in fakes.held("elevenlabs")
    receipt = erasure_of(sql, user)["receipt"]
    assert (receipt["enrolmentKeys"], receipt["inFlight"], receipt["leftovers"]) == ({"deleted": 1}, 2, {})


async def test_what_the_final_scan_finds_goes_round_again_and_what_stays_is_reported(
    ctx: WorkerContext, sql: Conn
) -> None:
    # A table of the project's own that keeps its users' ids under a name the erasure does not know.
    sql.execute("create table public.erasure_notes (author uuid, body text)")
    sql.execute("alter table public.erasure_notes owner to voicegate_migrator")
    kept, fixed = create_user(sql), create_user(sql)
    for user in (kept, fixed):
        sql.execute("insert into public.erasure_notes values (%s, 'a note')", (user,))
        sql.execute("delete from auth.users where id = %s", (user,))
        outcome = await process_erasure(ctx, erasure_of(sql, user)["id"])
        assert outcome.status == "working"
        assert outcome.retry_at is not None
        found = erasure_of(sql, user)
        assert (found["rounds"], found["leftovers"]) == (1, {"rows": {"public.erasure_notes": 1}})

    sql.execute("delete from public.erasure_notes where author = %s", (fixed,))
    assert (await process_erasure(ctx, erasure_of(sql, fixed)["id"])).status == "done"
    assert (erasure_of(sql, fixed)["receipt"]["rounds"], erasure_of(sql, fixed)["receipt"]["leftovers"]) == (2, {})

    assert (await process_erasure(ctx, erasure_of(sql, kept)["id"])).status == "working"
    assert (await process_erasure(ctx, erasure_of(sql, kept)["id"])).status == "incomplete"
    receipt = erasure_of(sql, kept)["receipt"]
    assert (receipt["rounds"], receipt["leftovers"]) == (MAX_ROUNDS, {"rows": {"public.erasure_notes": 1}})
