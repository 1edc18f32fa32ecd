"""Benchmark: a season of attempts through the real worker and its maintenance sweep, with the retention clock
shortened, on a throwaway embedded Postgres (fsync off, every other server setting at its default, autovacuum
included, the table settings the migrations make):

    python bench/season.py [--attempts 200000] [--retention 20] [--sweep-every 2] [--no-webhooks] [--statements N]

The attempts go in ten tenths. Each tenth: its voices and their queued `custom_voice_id` attempts (`local` voices in
the database, as bench/lifecycle.py's fast path: no audio work, no preview) are inserted in one transaction, the
trigger enqueueing each; then the worker (`queue_consumers.worker.run_worker`: every queue's consumer and the
maintenance sweep, in this process, with the voice manifests kept in memory) takes them until all are synced. With
the webhooks on (the default), the project has an endpoint here, a loopback HTTP server that answers 204, so each
attempt's events are delivered through the `webhook_delivery` queue too. Every retention setting is `--retention`
seconds (VOICEGATE_*_RETENTION_DAYS as a fraction of a day), the sweep runs every `--sweep-every` seconds, and
the server's autovacuum_naptime is `--naptime` (1 s; 1 min by default): shortened with the clock, as a 3-day archive
is vacuumed some 4,000 times within its retention, and a 20 s one would be vacuumed less than once at 1 min.

Printed: each tenth's attempts/s, from its insert's commit to its last attempt synced (the bench polls the attempts
still open, by their index, so that its own poll costs the same in the last tenth as in the first), beside a control
measured just before it (bare `pgmq.send → read → archive` messages/s, as bench/lifecycle.py's: the machine's load moves
both). The first tenth is the baseline: target the last at least 0.9 of it. Each growing table's bytes (with its
indexes) after the first tenth (start), the fifth (middle) and the tenth (end), beside the live voices then, and
the bytes per live voice (target: the bounded tables flat once the retention window has passed, the rest growing
with the voices, so flat per voice); and the dead rows against the live ones in each hot table at the same points
(target at most 20 %; a queue table holds a few live rows, so its dead rows are shown as a count too). With
`--statements N` the server loads pg_stat_statements and each tenth's N costliest statements are printed (time,
calls, blocks touched and read from outside shared buffers): a statement whose cost per call grows from tenth to
tenth is what a decline would come from.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.compose.parts import build_worker_context  # noqa: E402
from backend.cpu import CpuExecutor  # noqa: E402
from backend.db.migrate import migrate  # noqa: E402
from backend.db.pool import create_worker_pool  # noqa: E402
from backend.db.units import Database  # noqa: E402
from backend.provenance import ProvenanceSigner  # noqa: E402
from backend.providers.http import create_http_client  # noqa: E402
from backend.records.retention import DAY  # noqa: E402
from backend.settings import Settings, settings_from_env  # noqa: E402
from bench.lifecycle import PROFILE, ManifestsInMemory, raw_pgmq  # noqa: E402
from queue_consumers.worker import build_consumers, run_worker  # noqa: E402
from standins.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres, free_port  # noqa: E402

#: The tables whose bytes are printed: those retention bounds, then those that grow with the voices.
BOUNDED = (
    "pgmq.a_voice_clone_process",
    "pgmq.a_webhook_delivery",
    "pgmq.q_voice_clone_process",
    "pgmq.q_webhook_delivery",
    "public.voice_clone_attempt_events",
    "voicegate.audit_events",
    "voicegate.usage_events",
    "voicegate.queue_message_errors",
)
PER_VOICE = ("public.voices", "public.voice_clone_attempts", "voicegate.local_voices")
#: The hot tables whose dead rows are watched.
HOT = (
    "pgmq.q_voice_clone_process",
    "pgmq.q_webhook_delivery",
    "pgmq.a_voice_clone_process",
    "pgmq.a_webhook_delivery",
    "public.voice_clone_attempts",
    "public.voice_clone_attempt_events",
    "public.voices",
)
#: Attempts still open, read by the partial index of open attempts: the poll costs what is in flight, not what the
#: table holds, so the bench's own load is the same in the last tenth as in the first.
OPEN = "select count(*) from public.voice_clone_attempts where status in ('queued', 'processing', 'verifying')"
#: A tenth's attempts synced, read once it has none open (its owner's, by the owner's index).
SYNCED = "select count(*) from public.voice_clone_attempts where owner_id = %s and runtime_status = 'synced'"
SIZES = """
select t.name, pg_total_relation_size(t.name::regclass), coalesce(s.n_live_tup, 0), coalesce(s.n_dead_tup, 0)
  from unnest(%s::text[]) as t (name)
  left join pg_stat_all_tables s on s.relid = t.name::regclass
"""


class Snapshot(NamedTuple):
    label: str
    voices: int
    sizes: dict[str, tuple[int, int, int]]  # bytes, live rows, dead rows


def seed_tenth(dsn: str, tenth: int, count: int) -> str:
    """A user, `count` `local` voices in the database, and a queued `custom_voice_id` attempt on each, in one
    transaction (the trigger enqueues each attempt); the user's id."""
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        user = conn.execute(
            "insert into auth.users (id, email) values (gen_random_uuid(), %s) returning id", (f"t{tenth}@season.test",)
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "insert into voicegate.local_voices (voice_id, name, language, enrolment_key, profile)"
            " select 'season' || %s || '-' || n, 'b', 'en', 'bench-' || %s || '-' || n, %s::jsonb"
            "   from generate_series(1, %s) n",
            (tenth, tenth, json.dumps(PROFILE), count),
        )
        conn.execute(
            "with v as (insert into voices (owner_id, name, tts_provider)"
            "   select %s, 'v ' || n, 'local' from generate_series(1, %s) n returning id, name)"
            " insert into voice_clone_attempts"
            "   (owner_id, voice_id, provider, source, preview_required, provider_voice_id)"
            " select %s, v.id, 'local', 'custom_voice_id', false, 'season' || %s || '-' || substr(v.name, 3) from v",
            (user, count, user, tenth),
        )
    return str(user)


def snapshot(dsn: str, label: str) -> Snapshot:
    with psycopg.connect(dsn, autocommit=True) as conn:
        voices = conn.execute("select count(*) from voices where deleted_at is null").fetchone()[0]  # type: ignore[index]
        rows = conn.execute(SIZES, (list(dict.fromkeys(BOUNDED + PER_VOICE + HOT)),)).fetchall()
    return Snapshot(label, int(voices), {name: (int(b), int(live), int(dead)) for name, b, live, dead in rows})


#: The webhook endpoint, a process of its own (a thread of this one would wait for the worker's turn on the GIL,
#: and a loaded machine makes that longer than the sender's connect timeout).
RECEIVER = """
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@contextmanager
def webhook_receiver() -> Iterator[str]:
    """A loopback endpoint that answers every delivery 204; its URL."""
    process = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield f"http://127.0.0.1:{int(process.stdout.readline())}/hook"
    finally:
        process.terminate()
        process.wait(timeout=10)


class Tenth(NamedTuple):
    attempts_per_s: float
    #: The machine's pace just before: bare `pgmq.send → read → archive` messages/s on a queue of their own.
    control_per_s: float


async def season(args: argparse.Namespace, dsn: str, settings: Settings) -> tuple[list[Tenth], list[Snapshot]]:
    """The ten tenths through one running worker: each tenth's attempts/s beside its control, and the snapshots."""
    tenth = args.attempts // 10
    pool = create_worker_pool(dsn, settings.pool_limits, patience=settings.queue_visibility_seconds)
    await pool.open(wait=True)
    rates: list[Tenth] = []
    snapshots: list[Snapshot] = []
    async with create_http_client() as http, CpuExecutor(settings.cpu_threads(serves_api=False)) as cpu:
        signer = ProvenanceSigner.from_settings(settings)
        ctx = build_worker_context(settings, Database(pool), ManifestsInMemory(), http, signer, cpu=cpu)  # type: ignore[arg-type]
        consumers = build_consumers(settings, ctx, listen_dsn=dsn, worker_id="season")
        stopping = asyncio.Event()
        worker = asyncio.create_task(run_worker(settings, ctx, consumers, stopping))
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as watcher:
            for n in range(10):
                control = await raw_pgmq(dsn, args.control)
                user = await asyncio.to_thread(seed_tenth, dsn, n, tenth)
                started = time.perf_counter()
                while (row := await (await watcher.execute(OPEN)).fetchone()) is None or row[0] > 0:
                    if worker.done():
                        worker.result()
                    await asyncio.sleep(0.05)
                rates.append(Tenth(tenth / (time.perf_counter() - started), control))
                done = await (await watcher.execute(SYNCED, (user,))).fetchone()
                if done is None or done[0] != tenth:
                    raise SystemExit(f"tenth {n + 1}: {done} of {tenth} attempts synced")
                print(
                    f"    tenth {n + 1:2d}: {rates[-1].attempts_per_s:8.1f} attempts/s,"
                    f" control {control:8.1f} messages/s, ratio {rates[-1].attempts_per_s / control:.3f}",
                    flush=True,
                )
                if n in (0, 4, 9):
                    snapshots.append(snapshot(dsn, {0: "start", 4: "middle", 9: "end"}[n]))
                if args.statements:
                    await print_statements(watcher, args.statements)
        stopping.set()
        await worker
        await ctx.aclose()
    await pool.close()
    return rates, snapshots


STATEMENTS = """
select total_exec_time, calls, shared_blks_hit, shared_blks_read, left(regexp_replace(query, '\\s+', ' ', 'g'), 110)
  from pg_stat_statements order by total_exec_time desc limit %s
"""


async def print_statements(conn: psycopg.AsyncConnection[Any], top: int) -> None:
    """The tenth's costliest statements (pg_stat_statements), then the counters start again."""
    for total, calls, hit, read, query in await (await conn.execute(STATEMENTS, (top,))).fetchall():
        print(f"        {total:9.0f} ms {calls:8d} calls {hit + read:11d} blocks ({read:9d} read)  {query}")
    await conn.execute("select pg_stat_statements_reset()")


def report(rates: list[Tenth], snapshots: list[Snapshot], retention: float) -> None:
    first, last = rates[0], rates[-1]
    steady = last.attempts_per_s / first.attempts_per_s
    controlled = (last.attempts_per_s / last.control_per_s) / (first.attempts_per_s / first.control_per_s)
    print(
        f"attempts/s: first tenth {first.attempts_per_s:.1f} (baseline), last tenth {last.attempts_per_s:.1f}:"
        f" {steady:.2f}x (target ≥ 0.9); each beside its control (the machine's load moves): {controlled:.2f}x"
    )
    labels = [s.label for s in snapshots]
    print(f"table and index bytes (retention {retention:g} s):")
    print(f"    {'table':36s}" + "".join(f"{label:>14s}" for label in labels))
    for group, names in (("bounded", BOUNDED), ("per voice", PER_VOICE)):
        for name in names:
            print(f"    {name:36s}" + "".join(f"{s.sizes[name][0]:14,d}" for s in snapshots))
        total = [sum(s.sizes[name][0] for name in names) for s in snapshots]
        print(f"    {'  all ' + group:36s}" + "".join(f"{t:14,d}" for t in total))
        print(
            f"    {'  per live voice':36s}"
            + "".join(f"{t / s.voices:14,.1f}" for t, s in zip(total, snapshots, strict=True))
        )
    print(f"    {'live voices':36s}" + "".join(f"{s.voices:14,d}" for s in snapshots))
    every = [sum(s.sizes[name][0] for name in BOUNDED + PER_VOICE) / s.voices for s in snapshots]
    print(f"    {'all, per live voice':36s}" + "".join(f"{b:14,.1f}" for b in every))
    print("dead rows / live rows (target ≤ 20 %):")
    print(f"    {'table':36s}" + "".join(f"{label:>22s}" for label in labels))
    for name in HOT:
        cells = []
        for s in snapshots:
            _, live, dead = s.sizes[name]
            ratio = f"{100 * dead / live:5.1f} %" if live else "   - "
            cells.append(f"{dead:>9,d}/{live:<9,d}{ratio}")
        print(f"    {name:36s}" + "".join(f"{c:>22s}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=200_000, help="attempts in all (ten tenths)")
    parser.add_argument("--retention", type=float, default=20.0, help="seconds every retention setting keeps rows")
    parser.add_argument("--sweep-every", type=float, default=2.0, help="VOICEGATE_MAINTENANCE_INTERVAL, seconds")
    parser.add_argument("--no-webhooks", action="store_true", help="no project endpoint, so no deliveries")
    parser.add_argument(
        "--naptime", type=float, default=1.0, help="the server's autovacuum_naptime, seconds, shortened with the clock"
    )
    parser.add_argument("--control", type=int, default=1000, help="messages of each tenth's bare pgmq control")
    parser.add_argument(
        "--statements", type=int, default=0, help="print each tenth's N costliest statements (pg_stat_statements)"
    )
    args = parser.parse_args()
    days = str(args.retention / DAY)
    env = {
        "VOICEGATE_QUEUE_POLL_INTERVAL": "1.0",
        "VOICEGATE_MAINTENANCE_INTERVAL": str(args.sweep_every),
        **{
            f"VOICEGATE_{what}_RETENTION_DAYS": days
            for what in ("QUEUE_ARCHIVE", "AUDIT", "ATTEMPT_HISTORY", "SPEECH", "JOB", "USAGE")
        },
    }
    with tempfile.TemporaryDirectory(prefix="voicegate-season-") as tmp, contextlib_webhooks(args) as url:
        Path(tmp).chmod(0o755)
        (Path(tmp) / "storage").mkdir()
        if url is not None:
            env |= {
                "VOICEGATE_WEBHOOK_URL": url,
                "VOICEGATE_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"s" * 32).decode(),
            }
        # The usage ledger is kept two quota windows at least: the window is shortened with the clock.
        env["VOICEGATE_USER_USAGE_WINDOW"] = str(max(1, int(args.retention / 2)))
        settings = settings_from_env({**env, "VOICEGATE_DATA_DIR": tmp})
        server = {**FAST_UNSAFE_SETTINGS, "autovacuum_naptime": f"{args.naptime:g}s"}
        if args.statements:
            server |= {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all"}
        pg = EmbeddedPostgres(Path(tmp) / "pgdata", port=free_port(), settings=server)
        pg.ensure_running()
        try:
            migrate(pg.dsn)
            if args.statements:
                with psycopg.connect(pg.dsn, autocommit=True) as conn:
                    conn.execute("create extension if not exists pg_stat_statements")
            print(
                f"season: {args.attempts:,} attempts in tenths, retention {args.retention:g} s, sweep every"
                f" {args.sweep_every:g} s, autovacuum_naptime {args.naptime:g} s,"
                f" webhooks {'off' if url is None else 'on'}",
                flush=True,
            )
            rates, snapshots = asyncio.run(season(args, pg.dsn, settings))
            report(rates, snapshots, args.retention)
        finally:
            pg.stop()


@contextmanager
def contextlib_webhooks(args: argparse.Namespace) -> Iterator[str | None]:
    """The receiver's URL, or None with `--no-webhooks`."""
    if args.no_webhooks:
        yield None
        return
    with webhook_receiver() as url:
        yield url


if __name__ == "__main__":
    main()
