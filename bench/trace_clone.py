"""Trace one clone worker step (`VOICE_CLONE_PROCESS` handled for one attempt) on a throwaway database:
which of voicegate's modules it runs through, how often it crosses into another module and climbs back
up a layer, how many transactions it opens, how often it loads the attempt, and how many statements it
sends.

Three attempts, each handled once by the worker's step, in-process, as the consumer calls it:

- `enrol`: a `sample_upload` attempt of a reflection (its sample in Storage, the self-hosted fake as the
  provider), found `queued` (as on a redelivery, or through the internal route): claim, key, enrol,
  verify, ready, synced, preview queued, manifest written;
- `attach`: a `custom_voice_id` attempt on the `local` provider, leased by the clone queue's read as
  the consumer reads it (what `bench/lifecycle.py` runs a thousand of): verify, ready, synced, manifest;
- `re-enrol`: a `provider_migration` attempt whose provider voice the provider lost: a `provider_churn`
  attempt is started from the stored sample and this one fails saying so.

What is counted (with `sys.setprofile`, in the thread running the step; a resumed coroutine is not a
new call; the in-process Storage stand-in, Supabase's Storage in production, is not counted):

- modules visited: modules of `backend` with at least one function called;
- module entries: calls into a function of another `backend` module than the calling one (the nearest
  `backend` frame below it); beside them, those left when the database layer's calls among its own
  modules (units, connection, deadline, waiting) are not counted;
- climbs: module entries from a module on a lower layer into one on a higher layer, by the layers of
  `tests/unit/test_layers.py` (e.g. the database layer calling back into a use case);
- transactions: calls of `service_transaction`, `service_statement`, `service_pipeline` and `user_transaction` (with
  `--modules`, which function opened each);
- attempt loads: calls of the attempts' `load`; statements: `AsyncCursor.execute` calls.

The same script runs on an older tree (it finds the step, `load` and the units of work where either layout keeps
them):

    python bench/trace_clone.py [--modules]
"""

from __future__ import annotations

import argparse
import asyncio
import dis
import importlib
import inspect
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import httpx
import psycopg
from psycopg.cursor_async import AsyncCursor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.compose.parts import build_worker_context  # noqa: E402 - after the path setup above
from backend.context import WorkerContext  # noqa: E402
from backend.cpu import CpuExecutor  # noqa: E402
from backend.db.migrate import migrate  # noqa: E402
from backend.db.pool import create_pool  # noqa: E402
from backend.provenance import ProvenanceSigner  # noqa: E402
from backend.settings import settings_from_env  # noqa: E402
from devkit.audio_corpus import speech_wav  # noqa: E402
from devkit.db import create_user, one, seed_consent, seed_reflection  # noqa: E402
from devkit.layers import layer_of  # noqa: E402 - the layer test's own rule
from fakes import SelfhostedFake, serve  # noqa: E402
from standins.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres, free_port  # noqa: E402
from standins.storage.in_process import standalone_storage  # noqa: E402

RESUME = dis.opmap["RESUME"]
DEAD = "voicegate_" + "d" * 24
PROFILE = '{"median_f0_hz": 120.0, "f0_sd_semitones": 2.0, "syllable_rate_hz": 4.0, "envelope_db": []}'


def first_of(*paths: str) -> Any:
    """The first of `module:name` paths that exists (this tree's layout, or an older tree's)."""
    for path in paths:
        module, _, name = path.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise LookupError(f"none of {paths}")


#: The units of work that open a transaction: methods of `backend.db.units.Database`, or (on an older tree) functions
#: of the module that take the pool.
UNITS = ("service_transaction", "service_statement", "service_pipeline", "user_transaction")


def database_of(pool: Any) -> Any:
    """What the tree's lifecycle holds for the database: a `Database` over `pool`, or (on an older tree) `pool`."""
    database = getattr(importlib.import_module("backend.db.units"), "Database", None)
    return pool if database is None else database(pool)


def service_transaction_of(ctx: WorkerContext) -> AbstractAsyncContextManager[Any]:
    """A service transaction on the lifecycle's database, in either layout (on an older tree, `ctx.pool`)."""
    database = getattr(ctx, "db", None)
    if database is None:
        return importlib.import_module("backend.db.units").service_transaction(ctx.pool)
    return database.service_transaction()


def code_of(function: Any) -> CodeType:
    code: CodeType = inspect.unwrap(function).__code__
    return code


#: The Storage stand-in (Supabase's Storage in production): its service, and its routes served in-process,
#: all in one package.
STAND_IN = "standins.storage"


def ours(module: str) -> bool:
    """A module of voicegate's own that production runs: not the Storage stand-in (Supabase's, there)."""
    return module.startswith("backend") and not module.startswith(STAND_IN)


def stand_in(frame: FrameType) -> bool:
    """Whether the Storage stand-in runs this frame: one of its frames is below it (the stand-in is reached
    in-process through the Storage client, and calls nothing of the step's)."""
    caller: FrameType | None = frame
    while caller is not None:
        if caller.f_globals.get("__name__", "").startswith(STAND_IN):
            return True
        caller = caller.f_back
    return False


@dataclass
class Trace:
    """What one step ran, counted call by call."""

    transactions: frozenset[CodeType]
    load: CodeType
    calls: Counter[str] = field(default_factory=Counter)
    openers: Counter[str] = field(default_factory=Counter)
    entries: int = 0
    entries_above_db: int = 0
    climbs: int = 0
    opened: int = 0
    loads: int = 0
    statements: int = 0

    def profile(self, frame: FrameType, event: str, _arg: object) -> None:
        if event != "call":
            return
        code = frame.f_code
        if code.co_code[frame.f_lasti] != RESUME or code.co_code[frame.f_lasti + 1] != 0:
            return  # a coroutine or generator resumed, not called
        module = frame.f_globals.get("__name__", "")
        if (code is not AsyncCursor.execute.__code__ and not ours(module)) or stand_in(frame):
            return
        if code is AsyncCursor.execute.__code__:
            self.statements += 1
            return
        self.calls[module] += 1
        if code in self.transactions:
            self.opened += 1
            opener = frame.f_back
            while opener is not None and (
                not ours(opener.f_globals.get("__name__", "")) or opener.f_globals["__name__"] == "backend.db.units"
            ):
                opener = opener.f_back
            if opener is not None:
                self.openers[f"{opener.f_globals['__name__']}.{opener.f_code.co_name}"] += 1
        if code is self.load:
            self.loads += 1
        caller = frame.f_back
        while caller is not None and not ours(caller.f_globals.get("__name__", "")):
            caller = caller.f_back
        if caller is None or caller.f_globals["__name__"] == module:
            return
        self.entries += 1
        if not (module.startswith("backend.db") and caller.f_globals["__name__"].startswith("backend.db")):
            self.entries_above_db += 1
        low, high = layer_of(caller.f_globals["__name__"]), layer_of(module)
        if low is not None and high is not None and low > high:
            self.climbs += 1

    async def run(self, step: Awaitable[Any]) -> Any:
        sys.setprofile(self.profile)
        try:
            return await step
        finally:
            sys.setprofile(None)


@asynccontextmanager
async def lifecycle(dsn: str, data_dir: Path, provider_url: str) -> AsyncIterator[WorkerContext]:
    """A worker's context on the database, with the in-process Storage stand-in under `data_dir`."""
    settings = settings_from_env({"VOICEGATE_DATA_DIR": str(data_dir), "SELFHOSTED_BASE_URL": provider_url})
    pool = create_pool(dsn, settings.pool_limits)
    await pool.open(wait=True)
    async with (
        standalone_storage(dsn, data_dir / "storage") as storage,
        httpx.AsyncClient() as http,
        CpuExecutor(1) as cpu,
    ):
        ctx = build_worker_context(
            settings, database_of(pool), storage, http, ProvenanceSigner.from_settings(settings), cpu=cpu
        )
        yield ctx
        await ctx.aclose()
    await pool.close()


async def sampled_attempt(ctx: WorkerContext, db: psycopg.Connection[Any], **attempt: Any) -> uuid.UUID:
    """A voice with a consented sample in Storage and an attempt of it (columns `attempt`)."""
    owner = create_user(db)
    voice = one(db, "insert into voices (owner_id, name) values (%s, 'Ada') returning id", (owner,))["id"]
    path = f"{owner}/{voice}/original"
    await ctx.storage.upload("voice-samples", path, speech_wav(), "audio/wav")
    sample = one(
        db,
        "insert into voice_samples (owner_id, voice_id, consent_id, object_path, sniffed_type, provider, status)"
        " values (%s, %s, %s, %s, 'audio/wav', 'selfhosted', 'ready') returning id",
        (owner, voice, seed_consent(db, owner), path),
    )["id"]
    reflection = seed_reflection(db, owner) if attempt.pop("reflection", False) else None
    columns = {"owner_id": owner, "voice_id": voice, "sample_id": sample, "reflection_id": reflection, **attempt}
    names = ", ".join(columns)
    row = one(
        db,
        f"insert into voice_clone_attempts ({names}) values ({', '.join(['%s'] * len(columns))}) returning id",
        tuple(columns.values()),
    )
    return uuid.UUID(str(row["id"]))


def attached_attempt(db: psycopg.Connection[Any]) -> None:
    """A `local` voice and a queued `custom_voice_id` attempt naming it (the insert enqueues it)."""
    owner = create_user(db)
    voice = one(
        db, "insert into voices (owner_id, name, tts_provider) values (%s, 'v', 'local') returning id", (owner,)
    )
    db.execute(
        "insert into voicegate.local_voices (voice_id, name, language, enrolment_key, profile)"
        " values ('local-trace', 'b', 'en', 'trace', %s::jsonb)",
        (PROFILE,),
    )
    db.execute(
        "insert into voice_clone_attempts (owner_id, voice_id, provider, source, preview_required, provider_voice_id)"
        " values (%s, %s, 'local', 'custom_voice_id', false, 'local-trace')",
        (owner, voice["id"]),
    )


async def trace(dsn: str, data_dir: Path, show_modules: bool) -> None:
    process_attempt: Callable[..., Awaitable[Any]] = first_of(
        "backend.clone.step:process_attempt", "backend.attempts.worker:process_attempt"
    )
    load = first_of("backend.records.attempts:load", "backend.attempts.service:load")
    read_and_lease = first_of("backend.records.attempts:read_and_lease", "backend.attempts.service:read_and_lease")
    units = importlib.import_module("backend.db.units")
    opened = frozenset(code_of(getattr(getattr(units, "Database", units), name)) for name in UNITS)
    fake = SelfhostedFake("registry")
    with serve(fake) as url, psycopg.connect(dsn, autocommit=True) as db:
        async with lifecycle(dsn, data_dir, url) as ctx:
            enrol = await sampled_attempt(
                ctx, db, provider="selfhosted", source="sample_upload", preview_required=True, reflection=True
            )
            db.execute("delete from pgmq.q_voice_clone_process")  # only the attach attempt's message is read
            attached_attempt(db)
            reenrol = await sampled_attempt(
                ctx,
                db,
                provider="selfhosted",
                source="provider_migration",
                preview_required=False,
                provider_voice_id=DEAD,
            )
            async with service_transaction_of(ctx) as conn:
                [message] = await read_and_lease(
                    conn, "voice_clone_process", vt=30, qty=1, lease_owner="w", lease_seconds=60
                )
            steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                ("enrol", lambda: process_attempt(ctx, enrol, "w")),
                (
                    "attach",
                    lambda: process_attempt(
                        ctx, uuid.UUID(str(message["leased"]["id"])), "w", leased=message["leased"]
                    ),
                ),
                ("re-enrol", lambda: process_attempt(ctx, reenrol, "w")),
            ]
            print(
                f"{'step':9s} {'outcome':8s} {'modules':>7s} {'entries':>7s} {'(above db)':>10s} {'climbs':>6s}"
                f" {'txns':>4s} {'loads':>5s} {'stmts':>5s}"
            )
            for name, step in steps:
                counted = Trace(opened, code_of(load))
                outcome = await counted.run(step())
                print(
                    f"{name:9s} {outcome.status:8s} {len(counted.calls):7d} {counted.entries:7d}"
                    f" {counted.entries_above_db:10d} {counted.climbs:6d}"
                    f" {counted.opened:4d} {counted.loads:5d} {counted.statements:5d}"
                )
                if show_modules:
                    for module, calls in sorted(counted.calls.items()):
                        print(f"    {module:40s} {calls:4d} calls")
                    for opener, times in sorted(counted.openers.items()):
                        print(f"    transaction opened by {opener} x{times}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", action="store_true", help="list each step's modules and transaction openers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="voicegate-trace-") as tmp:
        Path(tmp).chmod(0o755)
        pg = EmbeddedPostgres(Path(tmp) / "pgdata", port=free_port(), settings=FAST_UNSAFE_SETTINGS)
        pg.ensure_running()
        try:
            migrate(pg.dsn)
            asyncio.run(trace(pg.dsn, Path(tmp), args.modules))
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
