"""Benchmark of the queue consumers and the attempt lifecycle, each figure beside its baseline from the
same run on the same throwaway database:

(a) attempts/s end to end (read and lease → verify at the provider → ready → runtime synced → voice
    manifest written) through the real consumers with a zero-latency provider (`local`, voices in the
    database; `custom_voice_id` attempts, so no audio work), beside raw `pgmq.send → read → archive`
    messages/s (target ≥ 40 %), and beside the bare equivalent: the same statements from a
    plain asyncio connection, none of the worker's own code, which is what the SQL alone allows on this
    machine (the median of 5 runs), as many attempts at once as the worker handles (its default, 16), their
    statements grouped as the worker's attempts, read together and going on in step, send them
    (`Database.grouped`); each run's database analyzed after its seeding, as autovacuum keeps a running one;
    both measured from the fifth of their attempts on (`Steady`: a running worker's connections are warm);
    and between the two, the bare equivalent's statements taken as the
    worker takes them, as units of work from a worker pool (`backend.db.units`), which splits the worker's
    shortfall into what its database layer costs and what the consumers and the clone step add. Targets:
    the worker at ≥ 0.9 times its bare equivalent, and ≤ 1.2 ms of Postgres CPU per attempt
    (every process of the server, from /proc/<pid>/stat, those that ended included through the postmaster's
    children times); beside it what does not depend on the machine's load: transactions, rows written and
    WAL records per attempt over the whole runs (pg_stat_database, pg_stat_wal).
    Then (a) again, finely interleaved (`interleaved`): one worker kept running on a new database and the
    bare equivalent's connections kept open on another new database of the same cluster take 300 attempts
    each in turn, 20 times, so that each worker turn has a bare turn a second away rather than minutes:
    attempts/s turn beside turn, and CPU per attempt of this process and of each database's client
    backends.
    Beside (a), in each of its rounds, a peer: procrastinate 3.10's empty job, a `noop` task, its
    worker at concurrency 10 over its connector's default pool, through `--attempts` jobs deferred at once
    on a database of its own on the same cluster, its jobs/s measured as the worker's attempts/s are (from
    the fifth job done on); the whole attempt's rate beside it, and the ratio (target ≥ 1.3). procrastinate
    is a benchmark-only package of requirements/dev.lock (`make test` installs it), never imported by what
    ships.
(d) two worker processes against one database: attempts/s, and attempts completed twice (target 0).
(b) pickup latency from a committed insert to the handler's start, p50 and p99, with LISTEN and with
    polling only. Targets with LISTEN: p50 ≤ 4 ms, p99 ≤ 20 ms.
(c) 500 attempts against the ElevenLabs fake answering after 1 s each, 200 handled at once over a pool
    of 40: wall time, messages with a failed delivery and dead letters. Target: 0 and 0. Then 200 attempts at
    the defaults (16 at once, 8 requests to a provider at once) against the fake holding the account to a plan
    of 8 requests at once, as ElevenLabs and Cartesia do (429 beyond): wall time, failures and requests the
    plan refused. Target: 0, 0 and 0.

Storage is Supabase's service in production, not this database: the manifests the attempts write are
kept in memory here, so the figures are the lifecycle's own work on the database.

    python bench/lifecycle.py [--attempts 1000] [--rounds 5] [--turns 20] [--turn 300] [--pickups 200]
                              [--slow 500] [--planned 200] [--skip-slow] [--only-a]

`--only-a`: (a) and the peer alone (no interleaved turns, (d), (b) or (c)), for a quick before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, LiteralString, NamedTuple

import msgspec
import psycopg
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend import queues  # noqa: E402
from backend.clone.likeness import judgement, leased_probe_inputs, probe_text  # noqa: E402
from backend.clone.manifest import BUCKET, WRITE_LIFETIME_SECONDS  # noqa: E402
from backend.clone.types import LikenessSource, NoLikeness  # noqa: E402
from backend.compose.parts import build_worker_context  # noqa: E402
from backend.cpu import CpuExecutor  # noqa: E402
from backend.db.migrate import migrate  # noqa: E402 - after the path setup above
from backend.db.pool import create_pool, create_worker_pool  # noqa: E402
from backend.db.queries import load_queries  # noqa: E402
from backend.db.units import Database  # noqa: E402
from backend.provenance import ProvenanceSigner  # noqa: E402
from backend.providers.http import create_http_client  # noqa: E402
from backend.providers.local.provider import ENGINE as LOCAL_ENGINE  # noqa: E402
from backend.queues import Message  # noqa: E402
from backend.records import attempts as attempt_service  # noqa: E402
from backend.records.attempts import AttemptRow  # noqa: E402
from backend.settings import Settings, settings_from_env  # noqa: E402
from backend.storage import paths  # noqa: E402
from backend.storage.digest import Digest  # noqa: E402
from backend.webhooks.step import declare_project_endpoint  # noqa: E402
from fakes import ElevenLabsFake, serve  # noqa: E402
from fakes.elevenlabs import ElevenVoice  # noqa: E402
from queue_consumers.runtime import ConsumerConfig, QueueConsumer  # noqa: E402
from queue_consumers.worker import build_consumers  # noqa: E402
from standins.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres, free_port  # noqa: E402

PROFILE = {"median_f0_hz": 120.0, "f0_sd_semitones": 2.0, "syllable_rate_hz": 4.0, "envelope_db": [0.0] * 24}


def seed_local_attempts(dsn: str, voice_ids: list[str]) -> uuid.UUID:
    """`local` voices in the database, and a queued `custom_voice_id` attempt for each; returns their owner."""
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        for voice in voice_ids:
            conn.execute(
                "insert into voicegate.local_voices (voice_id, name, language, enrolment_key, profile)"
                " values (%s, 'b', 'en', %s, %s::jsonb)",
                (voice, f"bench-{voice}", json.dumps(PROFILE)),
            )
    return seed_attempts(dsn, "local", voice_ids)


def analyzed(dsn: str) -> None:
    """The database analyzed, as autovacuum keeps a running one: no run plans its statements (and caches
    their plans) on tables its seeding has just grown many times over, as a worker's first run on a fresh
    database did (its leasing read 2.5 times dearer than in the runs after, 2026-11-26)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("analyze")


def seed_attempts(dsn: str, provider: str, voice_ids: list[str]) -> uuid.UUID:
    """One user; a voice and a queued `custom_voice_id` attempt per provider voice (the trigger enqueues),
    then the database `analyzed`; returns the user."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        user = conn.execute(
            "insert into auth.users (id, email) values (gen_random_uuid(), %s) returning id",
            (f"{uuid.uuid4().hex[:8]}@bench.test",),
        ).fetchone()[0]  # type: ignore[index]
        with conn.transaction():
            for voice_id in voice_ids:
                # Each of a user's voices has a name of its own (voices_owner_name_uidx).
                voice = conn.execute(
                    "insert into voices (owner_id, name, tts_provider) values (%s, %s, %s) returning id",
                    (user, f"v {voice_id}", provider),
                ).fetchone()[0]  # type: ignore[index]
                conn.execute(
                    "insert into voice_clone_attempts (owner_id, voice_id, provider, source, preview_required,"
                    " provider_voice_id) values (%s, %s, %s, 'custom_voice_id', false, %s)",
                    (user, voice, provider, voice_id),
                )
    analyzed(dsn)
    return uuid.UUID(str(user))


_SYNCED = "select count(*) from voice_clone_attempts where runtime_status = 'synced'"


def count_synced(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(_SYNCED).fetchone()
    return int(row[0]) if row else 0


class ManifestsInMemory:
    """Storage that keeps the voice manifests the attempts write and answers the workers' probe; anything
    else is a bug in the benchmark (`custom_voice_id` attempts need no sample)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    async def upload(self, bucket: str, path: str, data: bytes, content_type: str, *, upsert: bool = False) -> None:
        self.objects[bucket, path] = data

    async def info(self, bucket: str, path: str) -> None:
        """No object but the manifests: what the workers' Storage probe asks (any answer passes their check)."""
        return

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"the lifecycle benchmark stores only manifests ({name})")


def failures(dsn: str) -> tuple[int, int]:
    """Messages with a recorded failed delivery, and dead letters, so far."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        failed = conn.execute("select count(*) from voicegate.queue_message_errors").fetchone()
        dead = conn.execute("select count(*) from pgmq.q_" + queues.DEAD_LETTER).fetchone()
    return (int(failed[0]) if failed else 0), (int(dead[0]) if dead else 0)


def server_cpu_seconds(data_dir: Path) -> float:
    """CPU seconds the cluster in `data_dir` has used so far: the postmaster's own and its reaped
    children's (backends that ended), and every live child's."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    ticks = 0
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except (OSError, ValueError):
            continue
        # After the name: state, ppid, ... utime (14th field of the line), stime, cutime, cstime.
        if entry.name == str(postmaster):
            ticks += sum(int(f) for f in fields[11:15])
        elif fields[1] == str(postmaster):
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


_CLIENTS = "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()"


def settled(dsn: str, data_dir: Path) -> None:
    """Wait until the client backends of the run just ended have gone and been reaped (at most 10 s): the CPU
    of one that has exited but is not reaped yet is in neither `server_cpu_seconds` sum."""
    postmaster = (data_dir / "postmaster.pid").read_text().split()[0]
    deadline = time.monotonic() + 10
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(_CLIENTS).fetchone()
            if row is not None and row[0] == 0 and not _unreaped(postmaster):
                return
            time.sleep(0.01)
    raise RuntimeError("the run's connections did not end within 10 s")


def _unreaped(postmaster: str) -> bool:
    """Whether a child of the postmaster has exited and waits to be reaped (a zombie)."""
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except (OSError, ValueError):
            continue
        if fields[1] == postmaster and fields[0] == "Z":
            return True
    return False


_COUNTERS = (
    "select d.xact_commit, d.tup_inserted + d.tup_updated + d.tup_deleted, w.wal_records"
    " from pg_stat_database d, pg_stat_wal w where d.datname = current_database()"
)


def server_counters(dsn: str) -> tuple[int, int, int]:
    """The database's committed transactions, rows written (inserted, updated, deleted) and the cluster's
    WAL records so far (row locks write WAL too), as the backends that ended reported them."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(_COUNTERS).fetchone()
    if row is None:
        raise RuntimeError("no statistics for this database")
    return int(row[0]), int(row[1]), int(row[2])


def per_attempt(before: tuple[int, int, int], after: tuple[int, int, int], attempts: int) -> str:
    xacts, rows, wal = ((a - b) / attempts for a, b in zip(after, before, strict=True))
    return f"{xacts:.1f} transactions, {rows:.1f} rows written, {wal:.1f} WAL records"


DUPLICATES = (
    "select count(*) from (select attempt_id from public.voice_clone_attempt_events"
    " where dimension = 'status' and to_state = 'ready' group by attempt_id having count(*) > 1) twice"
)


def completed_twice(dsn: str) -> int:
    """Attempts whose move to `ready` was recorded more than once (two workers completing one attempt)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(DUPLICATES).fetchone()
    return int(row[0]) if row else 0


class Steady:
    """What a running worker keeps up: attempts/s and Postgres CPU per attempt from the `skip`-th attempt
    synced in a run to its `total`-th. A run's first attempts are left out because each new connection's
    backend parses, plans and caches its statements and compiles the lifecycle functions before it is
    quick (about 0.3 ms per attempt over a run of 1000), and a worker keeps its connections. Looked at over
    a connection of its own every 20 ms, the same for the worker and its bare equivalent."""

    def __init__(self, dsn: str, data_dir: Path, *, skip: int, total: int, counted: LiteralString = _SYNCED) -> None:
        self.dsn, self.data_dir, self.skip, self.total, self.counted = dsn, data_dir, skip, total, counted
        #: The attempts synced (or what `counted` counts) before the run: counted before anything of it starts.
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(counted).fetchone()
        self.base = int(row[0]) if row else 0
        self._marks: list[tuple[int, float, float]] = []

    async def watch(self) -> None:
        """Return once `total` more attempts are synced than before the run."""
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            base = self.base
            for mark in (self.skip, self.total):
                while (synced := await self._synced(conn) - base) < mark:  # noqa: ASYNC110 - a count to watch, nothing to await
                    await asyncio.sleep(0.02)
                self._marks.append((synced, time.perf_counter(), server_cpu_seconds(self.data_dir)))

    async def _synced(self, conn: psycopg.AsyncConnection[Any]) -> int:
        row = await (await conn.execute(self.counted)).fetchone()
        return int(row[0]) if row else 0

    def figures(self, cpu_after: float) -> tuple[float, float]:
        """Attempts/s between the two marks, and Postgres CPU seconds per attempt from the first mark to
        `cpu_after`: the server's CPU once the run's backends have ended and been reaped (`settled`). Not the
        second mark's: a run whose connections close as its work ends (the bare equivalent's) has backends
        that exited but are not reaped yet as the mark is taken, whose CPU is in neither of its sums."""
        (first, started, cpu), (last, ended, _) = self._marks
        return (last - first) / (ended - started), (cpu_after - cpu) / (last - first)


async def run_consumers_until(
    settings: Settings,
    dsn: str,
    synced: int,
    *,
    listen: bool = True,
    worker_id: str = "bench",
    watch: Callable[[], Awaitable[None]] | None = None,
) -> float:
    """Run the real consumers (in-process mode) until `synced` attempts are synced (or `watch` returns);
    return the seconds it took (looked at every 50 ms over one connection of its own, so the looking
    costs next to nothing)."""
    pool = create_worker_pool(dsn, settings.pool_limits, patience=settings.queue_visibility_seconds)
    await pool.open(wait=True)
    database = Database(pool)
    async with database.service_transaction() as conn:  # as a worker's first maintenance sweep
        await declare_project_endpoint(conn, configured=settings.webhook_url is not None)
    async with create_http_client() as http, CpuExecutor(settings.cpu_threads(serves_api=False)) as cpu:
        signer = ProvenanceSigner.from_settings(settings)
        ctx = build_worker_context(settings, database, ManifestsInMemory(), http, signer, cpu=cpu)  # type: ignore[arg-type]
        consumers = build_consumers(settings, ctx, listen_dsn=dsn if listen else None, worker_id=worker_id)
        stopping = asyncio.Event()
        tasks = [asyncio.create_task(c.run(stopping)) for c in consumers]
        started = time.perf_counter()
        if watch is not None:
            await watch()
        else:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as watcher:
                while (row := await (await watcher.execute(_SYNCED)).fetchone()) is None or row[0] < synced:  # noqa: ASYNC110 - a count to watch, nothing to await
                    await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        stopping.set()
        await asyncio.gather(*tasks)
        await ctx.aclose()
    await pool.close()
    return elapsed


async def raw_pgmq(dsn: str, messages: int, batch: int = 10) -> float:
    """Messages/s of send → read → archive on a fresh queue, one message at a time per step."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select pgmq.create('bench_raw')")
        started = time.perf_counter()
        for n in range(messages):
            conn.execute("select pgmq.send('bench_raw', %s::jsonb)", (json.dumps({"n": n}),))
        handled = 0
        while handled < messages:
            rows = conn.execute("select msg_id from pgmq.read('bench_raw', 30, %s)", (batch,)).fetchall()
            for (msg_id,) in rows:
                conn.execute("select pgmq.archive('bench_raw', %s::bigint)", (msg_id,))
            handled += len(rows)
        return messages / (time.perf_counter() - started)


class _Statements(NamedTuple):
    """The queries the clone step sends for a group of attempts, word for word, besides the lifecycle's calls."""

    voices: LiteralString
    read: LiteralString
    announce: LiteralString
    confirm: LiteralString


#: Read once: a bare connection's drain must not pay for reading them in its measured turn.
_STATEMENTS = _Statements(
    load_queries(ROOT / "backend/providers/local/db_store.sql")["get_voices"],
    load_queries(ROOT / "backend/clone/manifest.sql")["read_voices"],
    load_queries(ROOT / "backend/storage/integrity.sql")["announce"],
    load_queries(ROOT / "backend/clone/manifest.sql")["confirm"],
)


def _answer(leased: AttemptRow, found: dict[str, Any] | None) -> dict[str, Any]:
    """What the worker records of the provider's answer: the `local` voice's engine and profile."""
    return {
        "provider_voice_id": leased.provider_voice_id,
        "provider_target_model": None,
        "provider_request_id": None,
        "provider_metadata": {"engine": LOCAL_ENGINE, "profile": found["profile"] if found else None},
    }


async def archive_and_lease(
    conn: psycopg.AsyncConnection[dict[str, Any]], done: list[int], worker: str, batch: int
) -> list[dict[str, Any]]:
    """The batch handled before archived and the next one leased, on `conn`'s pipeline (as the clone
    consumer reads)."""
    if done:
        await conn.execute("select pgmq.archive(%s, %s::bigint[])", (queues.CLONE, done))
    return await attempt_service.read_and_lease(
        conn, queues.CLONE, vt=30, qty=batch, lease_owner=worker, lease_seconds=60
    )


Leased = tuple[AttemptRow, dict[str, Any]]
"""An attempt as the read leased it: typed, and as the read handed it."""


async def _drain(
    read: Callable[[list[int]], Awaitable[list[dict[str, Any]]]], handle: Callable[[list[Leased]], Awaitable[None]]
) -> None:
    """Read (archiving the batch before) and handle the attempts each batch's messages leased, until the queue
    is empty."""
    done: list[int] = []
    while rows := await read(done):
        await handle([(attempt_service.as_row(row["leased"]), row["leased"]) for row in rows])
        done = [row["msg_id"] for row in rows]


_MANIFEST_DIGEST = Digest.of(b"{}")


def _manifest_path(leased: AttemptRow) -> str:
    return paths.manifest(leased.owner_id, leased.voice_id)


def _announcement(leased: AttemptRow) -> dict[str, Any]:
    """An item of the manifest writes' announcement."""
    digest = _MANIFEST_DIGEST
    return {"bucket": BUCKET, "name": _manifest_path(leased), "sha256": digest.sha256, "size": digest.size}


def _confirmation(leased: AttemptRow, voice: dict[str, Any] | None, write: int | None) -> dict[str, Any]:
    """An item of the manifests' confirmation: its digest's record if the voice is as it was read."""
    return _announcement(leased) | {
        "voice_id": leased.voice_id,
        "updated_at": voice["updated_at"] if voice else None,
        "writes": [] if write is None else [write],
        "lifetime": WRITE_LIFETIME_SECONDS,
    }


Connectionlike = psycopg.AsyncConnection[dict[str, Any]]


async def _each(
    conn: Connectionlike, query: LiteralString, items: Sequence[dict[str, Any]]
) -> Callable[[], Awaitable[list[dict[str, Any] | None]]]:
    """`query` sent for `items` as `Database.grouped` sends a group's (each item's place as `n`), and not waited for:
    call the result for each item's first row, in their order (None where there is none)."""
    encoded = msgspec.json.encode([item | {"n": n} for n, item in enumerate(items)], enc_hook=str).decode()
    cursor = await conn.execute(query, {"items": encoded})

    async def rows() -> list[dict[str, Any] | None]:
        by_place = {row["n"]: row for row in await cursor.fetchall()}
        return [by_place.get(n) for n in range(len(items))]

    return rows


async def bare_lookups(conn: Connectionlike, batch: Sequence[AttemptRow]) -> list[dict[str, Any] | None]:
    """The `local` provider's voices, as the clone step asks for a group's."""
    return await (await _each(conn, _STATEMENTS.voices, [{"voice_id": a.provider_voice_id} for a in batch]))()


async def bare_lookup(conn: Connectionlike, leased: AttemptRow) -> dict[str, Any] | None:
    """The `local` provider's voice, as the clone step asks for it alone."""
    [found] = await bare_lookups(conn, [leased])
    return found


def bare_probe(handed: dict[str, Any]) -> dict[str, Any]:
    """The likeness probe's judgement of a voice without a samples' print (as the bench's attempts are), from
    what the leasing read handed with the attempt (`handed`), as the clone step makes it: no statement."""
    inputs = leased_probe_inputs(handed)
    if inputs is None or probe_text(inputs.language) is None:
        return {}
    return judgement(LikenessSource.PROBE, error=NoLikeness.NO_SAMPLE)


def _completion(
    leased: AttemptRow, found: dict[str, Any] | None, worker: str, judged: dict[str, Any]
) -> dict[str, Any]:
    """An item of the completion, with the provider's answer (`found`) and the probe's judgement, and the voice to read
    after it."""
    changes = _answer(leased, found) | judged
    item = attempt_service.completion(leased.id, f"worker:{worker}", lease_owner=worker, changes=changes)
    return item | {"voice_id": leased.voice_id}


async def bare_complete(
    conn: Connectionlike,
    leased: AttemptRow,
    found: dict[str, Any] | None,
    worker: str,
    judged: dict[str, Any] | None = None,
) -> None:
    """The completion with the provider's answer (and the probe's judgement), as the clone step records it alone."""
    await (await _each(conn, attempt_service.COMPLETE, [_completion(leased, found, worker, judged or {})]))()


async def bare_announce(conn: Connectionlike, batch: Sequence[AttemptRow]) -> list[int]:
    """The manifest writes' announcement: their ids, in order."""
    rows = await (await _each(conn, _STATEMENTS.announce, [_announcement(leased) for leased in batch]))()
    return [row["id"] for row in rows if row is not None]


async def bare_confirm(conn: Connectionlike, confirmations: Sequence[dict[str, Any]]) -> None:
    """The manifests' confirmations (`_confirmation`'s items), in one statement."""
    await (await _each(conn, _STATEMENTS.confirm, confirmations))()


async def bare_manifest(conn: Connectionlike, leased: AttemptRow) -> None:
    """One manifest's statements, a round trip and an implicit transaction each, none held through the upload:
    the voice's read, the write's announcement, then (after the upload) the digest's record and the
    announcement's end if the voice is as it was read."""
    [voice] = await (await _each(conn, _STATEMENTS.read, [{"voice_id": leased.voice_id}]))()
    [write] = await bare_announce(conn, [leased])
    await bare_confirm(conn, [_confirmation(leased, voice, write)])


async def bare_complete_and_read(
    conn: Connectionlike, batch: Sequence[tuple[Leased, dict[str, Any] | None]], worker: str
) -> list[dict[str, Any] | None]:
    """The attempts' completions with the provider's answer (`found`) and the probe's judgement, then their voices
    read for their manifests, two statements sent together (on `conn`'s pipeline, as the clone step sends a
    group's): the voices as read."""
    items = [_completion(leased, found, worker, bare_probe(handed)) for (leased, handed), found in batch]
    completed = await _each(conn, attempt_service.COMPLETE, items)
    read = await _each(conn, _STATEMENTS.read, items)
    await completed()
    return list(await read())


async def bare_drain(conn: Connectionlike, worker: str, batch: int) -> None:
    """One bare connection, acting as the service, through the clone queue until it is empty: the statements
    the consumers send for each attempt, the same queries word for word, grouped per read batch as the worker's
    attempts, read together and going on in step, send them (`Database.grouped`), a pipeline each: the leasing
    read with the archive of the batch before (which hands the likeness probe its inputs); the `local`
    provider's voices; the completions with the provider's answer and the probe's judgement, and the voices'
    read for the manifests; the manifests' announcement; then their confirmation."""

    async def read(done: list[int]) -> list[dict[str, Any]]:
        async with conn.pipeline():
            return await archive_and_lease(conn, done, worker, batch)

    async def handle(leased: list[Leased]) -> None:
        attempts = [attempt for attempt, _ in leased]
        found = await bare_lookups(conn, attempts)
        async with conn.pipeline():
            voices = await bare_complete_and_read(conn, list(zip(leased, found, strict=True)), worker)
        writes = await bare_announce(conn, attempts)
        await bare_confirm(conn, [_confirmation(*one) for one in zip(attempts, voices, writes, strict=True)])

    await _drain(read, handle)


async def bare_connections(dsn: str, count: int) -> list[psycopg.AsyncConnection[dict[str, Any]]]:
    """`count` plain connections acting as the service, for `bare_drain`."""
    connections = []
    for _ in range(count):
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, row_factory=dict_row)
        await conn.execute("set role service_role")
        connections.append(conn)
    return connections


async def bare_lifecycle(dsn: str, attempts: int, *, connections: int = 1, batch: int = 8) -> float:
    """Attempts/s of `bare_drain` from `connections` plain connections, opened for the run."""
    opened = await bare_connections(dsn, connections)
    started = time.perf_counter()
    try:
        await asyncio.gather(*(bare_drain(conn, f"bare-{n}", batch) for n, conn in enumerate(opened)))
    finally:
        for conn in opened:
            await conn.close()
    return attempts / (time.perf_counter() - started)


async def units_lifecycle(
    dsn: str, settings: Settings, attempts: int, *, connections: int = 1, batch: int = 8
) -> float:
    """Attempts/s of `bare_lifecycle`'s statements, each group taken as the worker takes it: a unit of work from
    a worker pool (`backend.db.units`: a checkout, a deadline, its waits watched), the leasing read with the
    archive in a `service_pipeline`, then each attempt of the batch on its own, concurrently, as the worker's
    slots run them, its statements grouped with the others' (`Database.grouped`): the `local` voice, the
    completion with the manifest's read, the manifest's announcement and its confirmation. Beside the bare
    equivalent it is what the database layer costs; beside the worker, what the consumers and the clone step
    add on top."""
    voices, read_voices, announce, confirm = _STATEMENTS
    pool = create_worker_pool(dsn, settings.pool_limits, patience=settings.queue_visibility_seconds)
    await pool.open(wait=True)
    database = Database(pool)

    async def work(n: int) -> None:
        worker = f"units-{n}"

        async def read(done: list[int]) -> list[dict[str, Any]]:
            async with database.service_pipeline() as conn:
                return await archive_and_lease(conn, done, worker, batch)

        async def handle(leased: AttemptRow, handed: dict[str, Any]) -> None:
            [found] = await database.grouped((voices,), {"voice_id": leased.provider_voice_id})
            item = _completion(leased, found[0] if found else None, worker, bare_probe(handed))
            _, current = await database.grouped((attempt_service.COMPLETE, read_voices), item)
            [write] = await database.grouped((announce,), _announcement(leased))
            voice = current[0] if current else None
            await database.grouped((confirm,), _confirmation(leased, voice, write[0]["id"]))

        async def handle_batch(leased: list[Leased]) -> None:
            await asyncio.gather(*(handle(attempt, handed) for attempt, handed in leased))

        await _drain(read, handle_batch)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(work(n) for n in range(connections)))
    finally:
        await pool.close()
    return attempts / (time.perf_counter() - started)


async def pickup_latencies(
    dsn: str, settings: Settings, count: int, *, listen: bool, spread: float = 0.005
) -> list[float]:
    """Seconds from a committed insert to the consumer's handler starting, `count` times in a row, `spread` seconds
    apart."""
    pool = create_pool(dsn, settings.pool_limits)
    await pool.open(wait=True)
    started_at: dict[int, float] = {}
    arrived = asyncio.Event()

    async def handler(message: Message) -> datetime | None:
        started_at[int(message.message["n"])] = time.perf_counter()
        arrived.set()
        return None

    config = ConsumerConfig(queue="voice_synthesis", poll_interval=settings.queue_poll_interval)
    consumer = QueueConsumer(Database(pool), config, handler, listen_dsn=dsn if listen else None)
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer.run(stopping))
    if listen:
        await consumer.listening.wait()
    latencies = []
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for n in range(count):
            arrived.clear()
            await conn.execute("select pgmq.send('voice_synthesis', %s::jsonb)", (json.dumps({"n": n}),))
            committed = time.perf_counter()
            await asyncio.wait_for(arrived.wait(), 10)
            latencies.append(started_at[n] - committed)
            await asyncio.sleep(spread)  # spread the inserts, as independent requests would be
    stopping.set()
    await task
    await pool.close()
    return latencies


def quantiles_ms(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


#: The worker at its default concurrency (VOICEGATE_CLONE_CONCURRENCY), which its bare equivalent matches in
#: attempts at once.
BASE = {"VOICEGATE_QUEUE_POLL_INTERVAL": "1.0"}


_SYNCED_SINCE = (
    "select count(*), extract(epoch from max(at) - min(at)) from public.voice_clone_attempt_events"
    " where id > %s and dimension = 'runtime' and to_state = 'synced'"
)


def two_workers(dsn: str, attempts: int) -> tuple[int, float]:
    """Two worker processes (`--worker` below), started together, until `attempts` more are synced: how
    many they synced, and the seconds from the first sync to the last (the processes' start-up left out)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("select coalesce(max(id), 0) from public.voice_clone_attempt_events").fetchone()
    last_event = int(row[0]) if row else 0
    command = [sys.executable, __file__, "--worker", dsn, "--until", str(count_synced(dsn) + attempts)]
    workers = [subprocess.Popen([*command, "--worker-id", f"bench-{n}"]) for n in range(2)]
    for worker in workers:
        if worker.wait(timeout=600) != 0:
            raise RuntimeError(f"a worker process ended with {worker.returncode}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        synced = conn.execute(_SYNCED_SINCE, (last_event,)).fetchone()
    if synced is None or not synced[0]:
        raise RuntimeError("the worker processes synced nothing")
    return int(synced[0]), float(synced[1])


#: The peer's worker as this bench runs it: procrastinate's `noop` task at concurrency 10.
PEER_CONCURRENCY = 10
PEER_DATABASE = "bench_procrastinate"
_PEER_DONE = "select count(*) from procrastinate_jobs where status = 'succeeded'"


def _peer_app(dsn: str) -> Any:
    """procrastinate's app on `dsn` with its empty job, `noop`."""
    try:
        import procrastinate  # noqa: PLC0415 - the peer's alone: the rest of the bench runs without it
    except ImportError as exc:
        raise SystemExit(
            "the peer's empty job needs procrastinate, of requirements/dev.lock: `make test` installs it, or"
            " pip install --require-hashes --no-deps with its lines of that lock"
        ) from exc
    # Its warning that the app is made in a `__main__` module is for workers started by its own command.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @app.task(name="noop")
    async def noop() -> None:
        """Nothing: what is measured is procrastinate's own lifecycle of a job."""

    return app


async def peer_database(dsn: str) -> str:
    """A new database of the cluster with procrastinate's schema, the peer's own; its address."""
    peer = psycopg.conninfo.make_conninfo(dsn, dbname=PEER_DATABASE)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("create database " + PEER_DATABASE)
    app = _peer_app(peer)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
    return peer


async def peer_noop(dsn: str, jobs: int) -> None:
    """`jobs` of procrastinate's `noop` deferred at once, as the attempts are seeded before a run (and its
    database `analyzed` as theirs)."""
    app = _peer_app(dsn)
    async with app.open_async():
        await app.tasks["noop"].batch_defer_async(*({} for _ in range(jobs)))
    await asyncio.to_thread(analyzed, dsn)


async def peer_worker(dsn: str) -> None:
    """procrastinate's worker at `PEER_CONCURRENCY` until it has caught up with its queue."""
    app = _peer_app(dsn)
    async with app.open_async():
        await app.run_worker_async(concurrency=PEER_CONCURRENCY, wait=False, install_signal_handlers=False)


class Run(NamedTuple):
    """One run of (a): attempts/s and Postgres CPU seconds per attempt from its steady part, and what it
    wrote per attempt over the whole run."""

    rate: float
    cpu: float
    writes: str


async def lifecycle_against_bare(args: argparse.Namespace, dsn: str, data_dir: Path, settings: Settings) -> None:
    """(a): the worker beside raw pgmq, its bare equivalent and that equivalent through the worker's units,
    `--rounds` runs of each taken in turns (worker, bare, units, worker, …) so that a machine that slows
    down or speeds up meanwhile weighs on all three."""
    print(f"(a) {args.attempts} attempts, zero-latency provider (local), {settings.clone_concurrency} at once")
    raw = await raw_pgmq(dsn, args.attempts)
    skip = args.attempts // 5
    peer_dsn = await peer_database(dsn)

    async def measured(name: str, run: Callable[[Steady], Awaitable[object]]) -> Run:
        """One run over fresh attempts."""
        seed_local_attempts(dsn, [f"local-{name}-{n:06d}" for n in range(args.attempts)])
        settled(dsn, data_dir)
        counters = server_counters(dsn)
        meter = Steady(dsn, data_dir, skip=skip, total=args.attempts)
        await run(meter)
        settled(dsn, data_dir)
        return Run(
            *meter.figures(server_cpu_seconds(data_dir)), per_attempt(counters, server_counters(dsn), args.attempts)
        )

    async def peer() -> Run:
        """One run of the peer over fresh jobs, measured as the worker's runs are."""
        await peer_noop(peer_dsn, args.attempts)
        settled(dsn, data_dir)
        counters = server_counters(peer_dsn)
        meter = Steady(peer_dsn, data_dir, skip=skip, total=args.attempts, counted=_PEER_DONE)
        await asyncio.gather(meter.watch(), peer_worker(peer_dsn))
        settled(dsn, data_dir)
        return Run(
            *meter.figures(server_cpu_seconds(data_dir)),
            per_attempt(counters, server_counters(peer_dsn), args.attempts),
        )

    async def worker(meter: Steady) -> object:
        return await run_consumers_until(settings, dsn, args.attempts, watch=meter.watch)

    # As many attempts at once as the worker handles, in one batch whose statements go in groups: the worker's
    # slots, read together, go on in step and send theirs together (`Database.grouped`).
    at_once = settings.clone_concurrency

    async def bare(meter: Steady) -> object:
        return await asyncio.gather(meter.watch(), bare_lifecycle(dsn, args.attempts, connections=1, batch=at_once))

    async def through_units(meter: Steady) -> object:
        return await asyncio.gather(
            meter.watch(), units_lifecycle(dsn, settings, args.attempts, connections=1, batch=at_once)
        )

    workers, bares, units, peers = [], [], [], []
    for run in range(args.rounds):
        workers.append(await measured(f"worker{run}", worker))
        bares.append(await measured(f"bare{run}", bare))
        units.append(await measured(f"units{run}", through_units))
        peers.append(await peer())
    # This machine's speed drifts by half within minutes: each worker run beside the bare run right after it.
    pairs = [w.rate / b.rate for w, b in zip(workers, bares, strict=True)]
    paired = f"{', '.join(f'{pair:.2f}' for pair in pairs)} (median {statistics.median(pairs):.2f})"
    rate, worker_cpu = statistics.median(r.rate for r in workers), statistics.median(r.cpu for r in workers)
    bare_rate, bare_cpu = statistics.median(r.rate for r in bares), statistics.median(r.cpu for r in bares)
    units_rate, units_cpu = statistics.median(r.rate for r in units), statistics.median(r.cpu for r in units)
    # Where the worker's shortfall lies: the units beside the bare run before them, the worker beside the
    # units run after the bare one.
    layers = [u.rate / b.rate for u, b in zip(units, bares, strict=True)]
    above = [w.rate / u.rate for w, u in zip(workers, units, strict=True)]

    def rates(runs: list[Run]) -> str:
        return ", ".join(f"{run.rate:.1f}" for run in runs)

    def cpus(runs: list[Run]) -> str:
        return ", ".join(f"{run.cpu * 1000:.2f}" for run in runs)

    print(
        f"    (rates and Postgres CPU from the {skip}th attempt synced on: a running worker's connections are warm;"
        f" each the median of {args.rounds} runs)\n"
        f"    lifecycle: {rate:8.1f} attempts/s ({rates(workers)})   raw pgmq send→read→archive:"
        f" {raw:8.1f} msg/s   ratio {rate / raw:.0%} (target ≥ 40%)\n"
        f"    bare equivalent (the same SQL, no worker code, {at_once} attempts at once, grouped):"
        f" {bare_rate:8.1f} attempts/s ({rates(bares)}), {bare_rate / raw:.0%} of raw\n"
        f"    the worker makes {rate / bare_rate:.2f} times its bare equivalent (target ≥ 0.9); each run beside"
        f" the bare run after it: {paired}\n"
        f"    the bare equivalent through the worker's units of work (pool, deadline, watched waits):"
        f" {units_rate:8.1f} attempts/s ({rates(units)}): {statistics.median(layers):.2f} of the bare (paired"
        f" medians), and the worker {statistics.median(above):.2f} of it\n"
        f"    Postgres CPU per attempt: worker {worker_cpu * 1000:.2f} ms ({cpus(workers)}; target"
        f" ≤ 1.2 ms), bare {bare_cpu * 1000:.2f} ms ({cpus(bares)}), through units {units_cpu * 1000:.2f} ms"
        f" ({cpus(units)})\n"
        f"    per attempt, whole runs (the last of each): worker {workers[-1].writes}; bare {bares[-1].writes}"
    )
    failed, dead = failures(dsn)
    print(f"    messages with a failed delivery: {failed}, dead letters: {dead}")
    # The peer beside the worker run of its round.
    against = [w.rate / p.rate for w, p in zip(workers, peers, strict=True)]
    peer_rate, peer_cpu = statistics.median(r.rate for r in peers), statistics.median(r.cpu for r in peers)
    print(
        f"    peer: procrastinate's empty job (noop, concurrency {PEER_CONCURRENCY}, {args.attempts} jobs, its own"
        f" database of the cluster): {peer_rate:8.1f} jobs/s ({rates(peers)}), Postgres CPU {peer_cpu * 1000:.2f}"
        f" ms per job ({cpus(peers)})\n"
        f"    the whole attempt against the empty job: {rate:8.1f} attempts/s against {peer_rate:.1f} jobs/s,"
        f" {rate / peer_rate:.2f}x (target ≥ 1.3x); each worker run beside its round's peer run:"
        f" {', '.join(f'{r:.2f}' for r in against)} (median {statistics.median(against):.2f})\n"
        f"    per job, whole runs (the last): peer {peers[-1].writes}"
    )


_CLIENT_PIDS = (
    "select pid from pg_stat_activity"
    " where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()"
)
_SYNCED_OF = "select count(*) from voice_clone_attempts where owner_id = %s and runtime_status = 'synced'"


def _ticks(pid: int) -> int:
    """CPU ticks (user and system) the process has used so far; none once it has ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


class Turn(NamedTuple):
    """One turn of `interleaved`: attempts/s, and CPU seconds per attempt of this process and of the turn's
    database's client backends (its watcher's left out)."""

    rate: float
    python: float
    postgres: float


async def _turn(
    watcher: psycopg.AsyncConnection[Any],
    dsn: str,
    name: str,
    run: Callable[[], Awaitable[object]],
    size: int,
) -> Turn:
    """`size` attempts seeded in `dsn`, and `run` until they are synced (`watcher` counts them every 20 ms),
    measured from when the seeding returns: a running worker starts on them at its first wait after it."""
    pids = [row[0] for row in await (await watcher.execute(_CLIENT_PIDS)).fetchall()]
    owner = seed_local_attempts(dsn, [f"local-{name}-{n:06d}" for n in range(size)])
    before = {pid: _ticks(pid) for pid in pids}
    own, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()

    async def synced() -> None:
        while (row := await (await watcher.execute(_SYNCED_OF, (owner,))).fetchone()) is None or row[0] < size:  # noqa: ASYNC110 - a count to watch
            await asyncio.sleep(0.02)

    await asyncio.gather(run(), synced())
    elapsed = time.perf_counter() - started
    mine = resource.getrusage(resource.RUSAGE_SELF)
    pids = [row[0] for row in await (await watcher.execute(_CLIENT_PIDS)).fetchall()]
    # A backend that came during the turn (the worker's pool growing) counts from its start.
    used = sum(_ticks(pid) - before.get(pid, 0) for pid in pids) / os.sysconf("SC_CLK_TCK")
    python = mine.ru_utime + mine.ru_stime - own.ru_utime - own.ru_stime
    return Turn(size / elapsed, python / size, used / size)


async def interleaved(args: argparse.Namespace, dsn: str, settings: Settings) -> None:
    """(a), finely interleaved: one worker kept running on a database and the bare equivalent's connections
    kept open on another of the same cluster take `--turn` attempts each in turn, `--turns` times, so that
    each worker turn has a bare turn a second away, not minutes. Both databases are new, so neither carries
    the rows of the runs before (the bench's own database holds every earlier run's). Both turns are
    watched the same way (a count every 20 ms, on a connection left out of the figures). The first two turns
    of each are left out: connections still warming."""
    mine, other = (psycopg.conninfo.make_conninfo(dsn, dbname=name) for name in ("bench_worker", "bench_bare"))
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("create database bench_worker")
        admin.execute("create database bench_bare")
    migrate(mine)
    migrate(other)
    # As the worker declares its own database's: whether a settled attempt queues a webhook message is the
    # same work on both sides.
    async with await psycopg.AsyncConnection.connect(other, autocommit=True, row_factory=dict_row) as there:
        await declare_project_endpoint(there, configured=settings.webhook_url is not None)
    concurrency = settings.clone_concurrency
    workers: list[Turn] = []
    bares: list[Turn] = []

    async def turns() -> None:
        # As in (a): the worker's attempts at once, in one batch whose statements go in groups.
        opened = await bare_connections(other, 1)

        async def consumers() -> None:
            """The worker's turn: its running consumers do the work."""

        async def bare() -> None:
            await asyncio.gather(*(bare_drain(conn, f"bare-{n}", concurrency) for n, conn in enumerate(opened)))

        try:
            async with (
                await psycopg.AsyncConnection.connect(mine, autocommit=True) as here,
                await psycopg.AsyncConnection.connect(other, autocommit=True) as there,
            ):
                for turn in range(args.turns):
                    workers.append(await _turn(here, mine, f"turn{turn}", consumers, args.turn))
                    bares.append(await _turn(there, other, f"turn{turn}", bare, args.turn))
        finally:
            for conn in opened:
                await conn.close()

    await run_consumers_until(settings, mine, 0, watch=turns)
    kept = list(zip(workers, bares, strict=True))[2:]
    ratios = [w.rate / b.rate for w, b in kept]
    quartiles = statistics.quantiles(ratios, n=4)

    def cpu(turns: list[Turn]) -> str:
        python = statistics.median(t.python for t in turns) * 1000
        postgres = statistics.median(t.postgres for t in turns) * 1000
        return f"{python:.2f} + {postgres:.2f} ms"

    print(
        f"    interleaved, {len(kept)} turns of {args.turn} attempts each (the worker and the bare equivalent each on"
        f" a new database of the cluster): worker {statistics.median(w.rate for w, _ in kept):.1f}"
        f" attempts/s, bare {statistics.median(b.rate for _, b in kept):.1f}; worker ÷ bare turn beside turn:"
        f" median {statistics.median(ratios):.2f} (quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f}; target ≥ 0.9)\n"
        f"    CPU per attempt, this process + the database's client backends (medians of the turns): worker"
        f" {cpu([w for w, _ in kept])}, bare {cpu([b for _, b in kept])}"
    )


async def bench(args: argparse.Namespace, dsn: str, data_dir: Path) -> None:
    settings = settings_from_env(BASE)

    await lifecycle_against_bare(args, dsn, data_dir, settings)
    if args.only_a:
        return
    await interleaved(args, dsn, settings)

    print(f"(d) {args.attempts} attempts, two worker processes on one database")
    seed_local_attempts(dsn, [f"local-two{n:06d}" for n in range(args.attempts)])
    synced, elapsed = two_workers(dsn, args.attempts)
    print(
        f"    {synced / elapsed:8.1f} attempts/s (first sync to last); attempts completed twice:"
        f" {completed_twice(dsn)} (target 0)"
    )

    print(f"(b) pickup latency over {args.pickups} inserts")
    for listen in (True, False):
        p50, p99 = quantiles_ms(await pickup_latencies(dsn, settings, args.pickups, listen=listen))
        label = "LISTEN + poll 1 s" if listen else "polling only, 1 s"
        print(f"    {label:18s} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms" + ("   (targets 4 / 20 ms)" if listen else ""))

    if args.skip_slow:
        return
    print(f"(c) {args.slow} attempts, ElevenLabs fake answering after 1 s, 200 at once, pool of 40")
    wide = {
        "VOICEGATE_CLONE_CONCURRENCY": "200",
        "VOICEGATE_PROVIDER_CONCURRENCY": "200",
        "VOICEGATE_DB_POOL_MAX": "40",
    }
    await against_slow_provider(dsn, args.slow, wide, plan=None, label="slow")
    print(f"    at the defaults, {args.planned} attempts, the fake holding the account to {PLAN} requests at once:")
    await against_slow_provider(dsn, args.planned, {}, plan=PLAN, label="plan")


#: (c)'s plan: as many requests at once as VOICEGATE_PROVIDER_CONCURRENCY's default allows (ElevenLabs' Pro tier
#: allows 10, Cartesia's Scale 15).
PLAN = 8


async def against_slow_provider(dsn: str, count: int, env: dict[str, str], *, plan: int | None, label: str) -> None:
    """(c): `count` attempts verified at the ElevenLabs fake answering after 1 s, the worker at `env`'s settings
    and the fake holding the account to `plan` requests at once (None: any number); prints the time, the
    failures and the requests the plan refused."""
    fake = ElevenLabsFake(max_voices=10_000)
    fake.plan_concurrency = plan
    ids = []
    for n in range(count):
        voice = ElevenVoice(voice_id=f"{label}{n:05d}", name="b", description=None, labels={}, samples=[])
        fake.voices[voice.voice_id] = voice
        ids.append(voice.voice_id)
    fake.faults.latency_s = 1.0
    with serve(fake) as url:
        eleven = settings_from_env({**BASE, **env, "ELEVENLABS_API_KEY": fake.api_key, "ELEVENLABS_BASE_URL": url})
        before = count_synced(dsn)
        failed_before, dead_before = failures(dsn)
        seed_attempts(dsn, "elevenlabs", ids)
        elapsed = await run_consumers_until(eleven, dsn, before + count)
    failed, dead = failures(dsn)
    at_once = eleven.provider_concurrency
    print(
        f"    {count} attempts in {elapsed:.2f} s (serial ≥ {count} s; {at_once} at once ≥ {count / at_once:.1f} s);"
        f" messages with a failed delivery: {failed - failed_before}, dead letters: {dead - dead_before}"
        f", requests the plan refused: {len(fake.over_plan)}, most at once {fake.most_in_flight} (targets 0, 0, 0)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="(a): worker and bare runs, taken in turns")
    parser.add_argument("--turns", type=int, default=20, help="(a) interleaved: turns of the worker and the bare")
    parser.add_argument("--turn", type=int, default=300, help="(a) interleaved: attempts per turn")
    parser.add_argument("--pickups", type=int, default=200)
    parser.add_argument("--slow", type=int, default=500, help="attempts against the 1 s-latency fake")
    parser.add_argument("--planned", type=int, default=200, help="(c): attempts at the defaults under a plan")
    parser.add_argument("--skip-slow", action="store_true", help="leave out (c)")
    parser.add_argument("--only-a", action="store_true", help="(a) and the peer alone")
    parser.add_argument("--worker", metavar="DSN", help=argparse.SUPPRESS)  # (d)'s worker processes
    parser.add_argument("--until", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-id", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(run_consumers_until(settings_from_env(BASE), args.worker, args.until, worker_id=args.worker_id))
        return
    with tempfile.TemporaryDirectory(prefix="voicegate-bench-") as tmp:
        Path(tmp).chmod(0o755)
        pg = EmbeddedPostgres(Path(tmp) / "pgdata", port=free_port(), settings=FAST_UNSAFE_SETTINGS)
        pg.ensure_running()
        try:
            migrate(pg.dsn)
            asyncio.run(bench(args, pg.dsn, pg.data_dir))
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
