"""Voice ownership (backend/records/ownership.py) in the `voice_sample_process` step on a real database with
pgvector and the real Storage stand-in, with real speech (the LibriSpeech clips kept with the tests, CC BY 4.0):
a sample of one man (2414) under one account registers his voice there; under VOICEGATE_VOICE_OWNERSHIP=hold the same
man's other recording uploaded by another account is held, saying nothing more than `held`, while his own second
sample is ready and a woman's (533) under a third account is ready too. (Under the default, `ask`, such a sample's
uploader is asked to read: tests/integration/test_ownership_reading.py.) The operator's release makes the held sample
ready and registers it; a refusal fails it; under `refuse` it fails at once and under `off` nothing is compared (its
print still joins). An erased account's prints leave the registry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
import pytest
import soundfile

from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.db.migrate import SUPABASE_DIR
from backend.db.queries import load_queries
from backend.db.units import Database
from backend.records import ownership
from backend.samples.step import process_sample
from backend.voiceprint import OWNERSHIP_THRESHOLD
from devkit.audio_corpus import wav_bytes
from devkit.db import create_user, one, seed_consent
from tests.integration.conftest import open_lifecycle

CLIPS = Path(__file__).resolve().parents[1] / "clips" / "librispeech"
BUCKET = "voice-samples"
RATE = 16000
F32 = npt.NDArray[np.float32]
Db = psycopg.Connection[Any]
QUERIES = load_queries(Path(ownership.__file__).with_suffix(".sql"))
pytestmark = pytest.mark.timeout(300)


def clip(name: str) -> F32:
    """A LibriSpeech clip kept with the tests, as float samples at 16 kHz."""
    samples, rate = soundfile.read(CLIPS / name.split("-", maxsplit=1)[0] / f"{name}.flac", dtype="float32")
    assert rate == RATE
    return np.asarray(samples, dtype=np.float32)


#: A man (2414) in two recordings (0.82 apart), and a woman (533, under 0.1 from him).
HIS = clip("2414-128291-0005")
HIS_OTHER = clip("2414-128291-0007")
HERS = clip("533-1066-0008")

Lifecycle = Callable[..., AbstractAsyncContextManager[WorkerContext]]


@pytest.fixture
def lifecycle(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> Lifecycle:
    """Opens a worker context on this test's database, with `env` over the defaults (one Storage for all)."""

    def open_one(**env: str) -> AbstractAsyncContextManager[WorkerContext]:
        return open_lifecycle(cpu, db_dsn, tmp_path, **env)

    return open_one


@pytest.fixture
async def ctx(lifecycle: Lifecycle) -> AsyncIterator[WorkerContext]:
    """A worker context under VOICEGATE_VOICE_OWNERSHIP=hold: every match held for review."""
    async with lifecycle(VOICEGATE_VOICE_OWNERSHIP="hold") as opened:
        yield opened


async def checked(ctx: WorkerContext, db: Db, owner: uuid.UUID, audio: F32) -> dict[str, Any]:
    """`audio` stored and checked as a pending sample of `owner` under a checkbox consent; its row afterwards."""
    sample_id = uuid.uuid4()
    path = f"{owner}/samples/{sample_id}/original"
    data = wav_bytes(audio, RATE)
    await ctx.storage.upload(BUCKET, path, data, "audio/wav")
    db.execute(
        "insert into voice_samples (id, owner_id, consent_id, object_path, sniffed_type, size_bytes, provider,"
        " status) values (%s, %s, %s, %s, 'audio/wav', %s, 'local', 'pending')",
        (sample_id, owner, seed_consent(db, owner), path, len(data)),
    )
    await process_sample(ctx, sample_id)
    row: dict[str, Any] = one(db, "select * from voice_samples where id = %s", (sample_id,))
    return row


def registered(db: Db, owner: uuid.UUID) -> int:
    count: int = one(db, "select count(*) as n from voicegate.voice_prints where owner_id = %s", (owner,))["n"]
    return count


def holds_of(db: Db, sample_id: uuid.UUID) -> list[dict[str, Any]]:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("select * from voicegate.ownership_holds where sample_id = %s", (sample_id,)).fetchall()


def actions(db: Db, sample_id: uuid.UUID) -> list[str]:
    rows = db.execute(
        "select action from voicegate.audit_events where subject_type = 'voice_sample' and subject_id = %s order by id",
        (str(sample_id),),
    ).fetchall()
    return [action for (action,) in rows]


#: What a sample's owner may read of it (the columns users are granted), as they read it (RLS).
USER_COLUMNS = (
    "id, owner_id, voice_id, consent_id, status, failure_reason, quality_report, speaker_match, duration_ms, name"
)


def as_owner(db: Db, owner: uuid.UUID, sample_id: uuid.UUID) -> dict[str, Any]:
    with db.transaction(force_rollback=True), db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("select set_config('request.jwt.claims', %s, true)", (f'{{"sub": "{owner}"}}',))
        cur.execute("select set_config('role', 'authenticated', true)")
        row = cur.execute(f"select {USER_COLUMNS} from voice_samples where id = %s", (sample_id,)).fetchone()
    assert row is not None
    return row


async def decide(ctx: WorkerContext, hold_id: uuid.UUID, decision: str) -> ownership.Hold:
    db: Database = ctx.db
    async with db.service_transaction() as conn:
        return await ownership.decide(conn, hold_id, decision, actor="ops:test", note="checked by hand")  # type: ignore[arg-type]


async def test_another_accounts_recording_of_a_registered_voice_is_held_and_says_only_held(
    ctx: WorkerContext, db: Db
) -> None:
    alice, bob, carol = create_user(db), create_user(db), create_user(db)
    first = await checked(ctx, db, alice, HIS)
    assert first["status"] == "ready"
    own = await checked(ctx, db, alice, HIS_OTHER)
    assert own["status"] == "ready", "an owner's own new sample never matches their own prints"
    assert registered(db, alice) == 2
    assert holds_of(db, own["id"]) == []

    taken = await checked(ctx, db, bob, HIS_OTHER)
    assert taken["status"] == "held"
    assert taken["failure_reason"] is None
    [hold] = holds_of(db, taken["id"])
    assert (hold["state"], hold["owner_id"], hold["matched_owner_id"]) == ("held", bob, alice)
    assert hold["matched_sample_id"] in {first["id"], own["id"]}
    assert hold["score"] >= OWNERSHIP_THRESHOLD
    assert registered(db, bob) == 0, "a held sample's print joins the registry only when released"
    assert actions(db, taken["id"]) == ["ownership.held"]

    hers = await checked(ctx, db, carol, HERS)
    assert hers["status"] == "ready", "another speaker matches nobody"
    assert holds_of(db, hers["id"]) == []

    # What Bob can read of his held sample has the shape of Carol's ready one, and nothing of Alice's.
    seen, ready = as_owner(db, bob, taken["id"]), as_owner(db, carol, hers["id"])
    assert seen.keys() == ready.keys()
    assert (seen["status"], seen["failure_reason"]) == ("held", None)
    shown = repr(seen)
    assert str(alice) not in shown
    assert f"{hold['score']:.2f}" not in shown


async def test_a_released_hold_makes_the_sample_ready_and_registers_it_and_a_refused_one_fails_it(
    ctx: WorkerContext, db: Db
) -> None:
    alice, bob, dan = create_user(db), create_user(db), create_user(db)
    await checked(ctx, db, alice, HIS)
    released = await checked(ctx, db, bob, HIS_OTHER)
    refused = await checked(ctx, db, dan, HIS_OTHER)
    [to_release], [to_refuse] = holds_of(db, released["id"]), holds_of(db, refused["id"])

    hold = await decide(ctx, to_release["id"], "released")
    assert (hold.state, hold.decided_by, hold.note) == ("released", "ops:test", "checked by hand")
    assert one(db, "select status from voice_samples where id = %s", (released["id"],))["status"] == "ready"
    assert registered(db, bob) == 1
    assert actions(db, released["id"]) == ["ownership.held", "ownership.released"]
    with pytest.raises(ownership.HoldDecided):
        await decide(ctx, to_release["id"], "refused")

    # Checked again (an enrolment for another provider), the released sample is not held a second time.
    db.execute("update voice_samples set status = 'pending' where id = %s", (released["id"],))
    await process_sample(ctx, released["id"])
    assert one(db, "select status from voice_samples where id = %s", (released["id"],))["status"] == "ready"
    assert len(holds_of(db, released["id"])) == 1

    await decide(ctx, to_refuse["id"], "refused")
    after = one(db, "select status, failure_reason from voice_samples where id = %s", (refused["id"],))
    assert (after["status"], after["failure_reason"]) == ("failed", ownership.SAMPLE_REFUSAL)
    assert registered(db, dan) == 0
    assert actions(db, refused["id"]) == ["ownership.held", "ownership.refused"]
    with pytest.raises(ownership.HoldNotFound):
        await decide(ctx, uuid.uuid4(), "released")


async def taken_under(lifecycle: Lifecycle, db: Db, **env: str) -> tuple[uuid.UUID, uuid.UUID, dict[str, Any]]:
    """Alice's recording of him registered under the defaults, then Bob's other recording of him checked under
    `env` (over `hold`): the two accounts and Bob's sample."""
    alice, bob = create_user(db), create_user(db)
    async with lifecycle() as ctx:
        await checked(ctx, db, alice, HIS)
    async with lifecycle(**{"VOICEGATE_VOICE_OWNERSHIP": "hold", **env}) as ctx:
        taken = await checked(ctx, db, bob, HIS_OTHER)
    return alice, bob, taken


@pytest.mark.parametrize(("mode", "status"), [("refuse", "failed"), ("off", "ready")])
async def test_under_refuse_a_match_fails_at_once_and_under_off_nothing_is_compared(
    lifecycle: Lifecycle, db: Db, mode: str, status: str
) -> None:
    alice, bob, taken = await taken_under(lifecycle, db, VOICEGATE_VOICE_OWNERSHIP=mode)
    assert taken["status"] == status
    found = holds_of(db, taken["id"])
    if mode == "refuse":
        assert taken["failure_reason"] == ownership.SAMPLE_REFUSAL
        assert [(h["state"], h["decided_by"], h["matched_owner_id"]) for h in found] == [
            ("refused", "policy:refuse", alice)
        ]
        assert registered(db, bob) == 0
    else:
        assert found == []
        assert registered(db, bob) == 1, "under off prints still join the registry, for when it is turned on"


@pytest.mark.parametrize(("threshold", "status"), [("0.70", "held"), ("0.95", "ready")])
async def test_an_operators_threshold_decides_from_what_score_a_voice_is_held(
    lifecycle: Lifecycle, db: Db, threshold: str, status: str
) -> None:
    # His two recordings score about 0.82: held from 0.70, not from 0.95.
    _, bob, taken = await taken_under(lifecycle, db, VOICEGATE_OWNERSHIP_THRESHOLD=threshold)
    assert taken["status"] == status
    found = holds_of(db, taken["id"])
    if status == "held":
        assert [h["state"] for h in found] == ["held"]
        assert found[0]["threshold"] == pytest.approx(float(threshold))  # stored as a real
        assert found[0]["score"] < 0.95
    else:
        assert found == []
        assert registered(db, bob) == 1


async def test_an_erased_accounts_prints_leave_the_registry_and_a_hold_keeps_its_other_account_as_null(
    ctx: WorkerContext, db: Db
) -> None:
    alice, bob = create_user(db), create_user(db)
    await checked(ctx, db, alice, HIS)
    taken = await checked(ctx, db, bob, HIS_OTHER)
    assert registered(db, alice) == 1

    db.execute("delete from auth.users where id = %s", (alice,))

    assert registered(db, alice) == 0
    [hold] = holds_of(db, taken["id"])
    assert (hold["state"], hold["matched_owner_id"]) == ("held", None)


async def test_users_can_read_neither_prints_nor_holds(ctx: WorkerContext, db: Db) -> None:
    alice = create_user(db)
    await checked(ctx, db, alice, HIS)
    for table in ("voicegate.voice_prints", "voicegate.ownership_holds"):
        for role in ("anon", "authenticated"):
            with db.transaction(force_rollback=True):
                db.execute("select set_config('role', %s, true)", (role,))
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    db.execute(f"select * from {table}")  # fixed names


def _unit(vector: npt.NDArray[np.float64]) -> F32:
    return np.asarray(vector / np.linalg.norm(vector), dtype=np.float32)


def test_the_registrys_graph_is_built_with_the_denser_links_its_search_width_is_measured_on(db: Db) -> None:
    options = one(
        db,
        "select c.reloptions, i.indexdef from pg_catalog.pg_class c join pg_catalog.pg_indexes i"
        " on i.schemaname = 'voicegate' and i.indexname = c.relname"
        " where c.oid = 'voicegate.voice_prints_embedding_idx'::regclass",
    )
    # As the migration sets them (pgvector's defaults are 16 and 64), and as pg_dump, and so the bench, sees them.
    assert set(options["reloptions"]) >= {"m=32", "ef_construction=128"}
    assert "using hnsw" in options["indexdef"].lower()
    assert "m='32'" in options["indexdef"]


def test_the_denser_graphs_migration_builds_it_again_only_where_its_settings_are_missing(db: Db) -> None:
    migration = (SUPABASE_DIR / "migrations" / "20261129043000_voice_prints_denser_graph.sql").read_text()

    def built() -> int:
        """The index's file: a new one each time the graph is built."""
        return int(
            one(db, "select relfilenode from pg_catalog.pg_class where relname = 'voice_prints_embedding_idx'")[
                "relfilenode"
            ]
        )

    before = built()
    db.execute(migration)  # an operator built it ahead (or the migration ran): left as it is
    assert built() == before
    db.execute("alter index voicegate.voice_prints_embedding_idx reset (m, ef_construction)")
    db.execute(migration)
    assert built() != before


async def test_a_search_sends_its_settings_with_it_in_one_round_trip_and_the_owners_prints_never_crowd_it(
    ctx: WorkerContext, db: Db, tmp_path: Path
) -> None:
    alice, bob = create_user(db), create_user(db)
    rng = np.random.default_rng(5)
    asked = _unit(np.eye(192)[0])
    # 150 of Alice's prints nearer the print asked about than Bob's one: more than the candidates an index scan
    # reads at its default settings (hnsw.ef_search 40, no iterative scan), which the owner filter then empties.
    for _ in range(150):
        vector = ownership.vector_literal(_unit(np.eye(192)[0] + 0.02 * rng.standard_normal(192)))
        db.execute(
            "insert into voicegate.voice_prints (owner_id, consent_id, embedding) values (%s, %s, %s)",
            (alice, seed_consent(db, alice), vector),
        )
    bobs = _unit(np.eye(192)[0] + 0.6 * np.eye(192)[1])
    db.execute(
        "insert into voicegate.voice_prints (owner_id, consent_id, embedding) values (%s, %s, %s)",
        (bob, seed_consent(db, bob), ownership.vector_literal(bobs)),
    )
    db.execute("analyze voicegate.voice_prints")
    params = {"owner_id": alice, "print": ownership.vector_literal(asked)}
    with db.transaction(force_rollback=True):
        db.execute("set local enable_seqscan = off")
        plain = db.execute(QUERIES["best_other"], params).fetchall()
    assert plain == [], "without the search's settings the index's candidates are all Alice's"

    trace = tmp_path / "libpq.trace"
    service: Database = ctx.db
    async with service.service_transaction() as conn:
        await conn.execute("set local enable_seqscan = off")
        with trace.open("w") as sink:
            conn.pgconn.trace(sink.fileno())
            conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
            match = await ownership.best_other(conn, alice, asked)
            conn.pgconn.untrace()
    assert match is not None
    assert (match.owner_id, round(match.score, 4)) == (bob, round(float(np.dot(asked, bobs)), 4))
    # Each round trip ends with the server's ReadyForQuery.
    messages = [line.split("\t")[:3:2] for line in trace.read_text().splitlines() if line.count("\t") >= 2]
    assert [kind for side, kind in messages if side == "B"].count("ReadyForQuery") == 1, messages
    assert [kind for side, kind in messages if side == "F"].count("Execute") == 2, "the settings and the search"
