"""What migrations changed in the server's work per clone attempt: Postgres CPU per attempt of the bare
equivalent's statements (`bench/lifecycle.py`), phase by phase, on the schema as every migration leaves it
beside the schema before `--since` (its baseline), measured in the same run.

Two databases of one cluster: one migrated without the migrations from `--since` on, one with all of them,
each with the project's webhook endpoint declared on or off (`--webhook`; a settled attempt queues a
webhook message only with one). Both get the same attempts, and 8 connections of their own (the worker's
default concurrency) send the bare equivalent's statements in four phases: the lease (the leasing read,
8 messages at once, with the archive of the batch before), the `local` provider's lookup, the completion,
and the manifest's two round trips. Each phase of each chunk runs on one database, then on the other, in an
order that alternates, so that this machine's drift (its speed swings twofold within minutes) weighs on both
alike. CPU is the time each connection's backend spent on a CPU (/proc/<pid>/schedstat, nanoseconds).

Prints CPU per attempt, phase by phase, for both; and the new schema ÷ its baseline, phase by phase and in
all: the ratio of the sums, and the median and quartiles of the chunks' ratios.

    python bench/schema_cpu.py --since 20261125145000 [--webhook on|off] [--attempts 2400] [--chunks 10]
                               [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.db.migrate import SUPABASE_DIR, discover_migrations, migrate  # noqa: E402
from backend.records import attempts as attempt_service  # noqa: E402
from backend.records.attempts import AttemptRow  # noqa: E402
from backend.webhooks.step import declare_project_endpoint  # noqa: E402
from bench.lifecycle import (  # noqa: E402
    PROFILE,
    archive_and_lease,
    bare_complete,
    bare_connections,
    bare_lookup,
    bare_manifest,
    seed_local_attempts,
)
from standins.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres, free_port  # noqa: E402

CONNECTIONS = 8
PHASES = ("lease", "lookup", "complete", "manifest")


def baseline_supabase_dir(since: str, into: Path) -> Path:
    """A copy of the project's supabase directory without the migrations versioned `since` or later."""
    shutil.copytree(SUPABASE_DIR, into, symlinks=False)
    left_out = [m for m in discover_migrations(into / "migrations") if m.version >= since]
    if not left_out:
        raise SystemExit(f"no migration is versioned {since} or later: nothing to measure")
    for migration in left_out:
        migration.path.unlink()
    return into


def _on_cpu_ns(pid: int) -> int:
    """Nanoseconds the process has spent on a CPU so far."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


class Side:
    """One database and the bare equivalent's connections to it, with what they have leased."""

    def __init__(self, dsn: str, connections: list[psycopg.AsyncConnection[dict[str, Any]]], pids: list[int]):
        self.dsn, self.connections, self.pids = dsn, connections, pids
        self.cpu: dict[str, list[float]] = {phase: [] for phase in PHASES}
        self.new_round()

    def new_round(self) -> None:
        """Nothing leased yet: each connection's attempts, its messages, and how many of those are archived."""
        self.leased: list[list[AttemptRow]] = [[] for _ in self.connections]
        self.messages: list[list[int]] = [[] for _ in self.connections]
        self.archived = [0 for _ in self.connections]

    @classmethod
    async def open(cls, dsn: str, *, webhook: bool) -> Side:
        """`CONNECTIONS` connections acting as the service, the project's endpoint declared as asked."""
        connections = await bare_connections(dsn, CONNECTIONS)
        await declare_project_endpoint(connections[0], configured=webhook)
        pids = []
        for conn in connections:
            row = await (await conn.execute("select pg_backend_pid() as pid")).fetchone()
            pids.append(int(row["pid"]))  # type: ignore[index]
        return cls(dsn, connections, pids)

    async def measured(
        self, phase: str, work: Callable[[int, psycopg.AsyncConnection[dict[str, Any]]], Awaitable[int]]
    ) -> None:
        """Run `work` on every connection at once; record the backends' CPU per attempt it handled."""
        before = sum(_on_cpu_ns(pid) for pid in self.pids)
        handled = sum(await asyncio.gather(*(work(n, conn) for n, conn in enumerate(self.connections))))
        if handled:
            self.cpu[phase].append((sum(_on_cpu_ns(pid) for pid in self.pids) - before) / 1000 / handled)

    async def close(self) -> None:
        """Close the connections."""
        for conn in self.connections:
            await conn.close()


async def _chunk(side: Side, upto: int, handled: slice) -> None:
    """One chunk on `side`: lease until each connection holds `upto` attempts, then the `handled` ones of
    each connection through the other three phases."""

    async def lease(n: int, conn: psycopg.AsyncConnection[dict[str, Any]]) -> int:
        got = 0
        while len(side.leased[n]) < upto:
            async with conn.pipeline():
                rows = await archive_and_lease(conn, side.messages[n][side.archived[n] :], f"bare-{n}", CONNECTIONS)
            side.archived[n] = len(side.messages[n])
            if not rows:
                break
            for row in rows:
                side.leased[n].append(attempt_service.as_row(row["leased"]))
                side.messages[n].append(row["msg_id"])
            got += len(rows)
        return got

    async def lookup(n: int, conn: psycopg.AsyncConnection[dict[str, Any]]) -> int:
        for leased in side.leased[n][handled]:
            await bare_lookup(conn, leased)
        return len(side.leased[n][handled])

    async def complete(n: int, conn: psycopg.AsyncConnection[dict[str, Any]]) -> int:
        for leased in side.leased[n][handled]:
            await bare_complete(conn, leased, {"profile": PROFILE}, f"bare-{n}")
        return len(side.leased[n][handled])

    async def manifest(n: int, conn: psycopg.AsyncConnection[dict[str, Any]]) -> int:
        for leased in side.leased[n][handled]:
            await bare_manifest(conn, leased)
        return len(side.leased[n][handled])

    for phase, work in zip(PHASES, (lease, lookup, complete, manifest), strict=True):
        await side.measured(phase, work)


async def compare(baseline_dsn: str, new_dsn: str, args: argparse.Namespace) -> None:
    """The rounds and chunks on both databases, then the figures."""
    sides = {
        "baseline": await Side.open(baseline_dsn, webhook=args.webhook == "on"),
        "new": await Side.open(new_dsn, webhook=args.webhook == "on"),
    }
    per = args.attempts // CONNECTIONS // args.chunks
    try:
        for round_ in range(args.rounds):
            for side in sides.values():
                seed_local_attempts(side.dsn, [f"r{round_}-{n:06d}" for n in range(args.attempts)])
                side.new_round()
            for chunk in range(args.chunks):
                order = ("baseline", "new") if (chunk + round_) % 2 == 0 else ("new", "baseline")
                for name in order:
                    await _chunk(sides[name], per * (chunk + 1), slice(per * chunk, per * (chunk + 1)))
    finally:
        for side in sides.values():
            await side.close()
    report(sides["baseline"].cpu, sides["new"].cpu)


def report(baseline: dict[str, list[float]], new: dict[str, list[float]]) -> None:
    """Per attempt, phase by phase and in all, and new ÷ baseline."""

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    for name, cpu in (("baseline", baseline), ("new", new)):
        phases = "  ".join(f"{phase} {mean(cpu[phase]):6.0f}" for phase in PHASES)
        print(f"{name:9s} µs of Postgres CPU per attempt: {phases}  all {sum(mean(cpu[p]) for p in PHASES):6.0f}")
    totals_base = [sum(chunk) for chunk in zip(*(baseline[p] for p in PHASES), strict=False)]
    totals_new = [sum(chunk) for chunk in zip(*(new[p] for p in PHASES), strict=False)]
    for phase, base_chunks, new_chunks in [
        *((p, baseline[p], new[p]) for p in PHASES),
        ("all", totals_base, totals_new),
    ]:
        ratios = [b / a for a, b in zip(base_chunks, new_chunks, strict=False)]
        low, _, high = statistics.quantiles(ratios, n=4)
        print(
            f"new ÷ baseline, {phase:8s}: {mean(new_chunks) / mean(base_chunks):.3f} (chunk beside chunk: median"
            f" {statistics.median(ratios):.3f}, quartiles {low:.2f}-{high:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--since", required=True, help="the first migration version the baseline leaves out")
    parser.add_argument("--webhook", choices=("on", "off"), default="off", help="the project's webhook endpoint")
    parser.add_argument("--attempts", type=int, default=2400, help="attempts per database per round")
    parser.add_argument("--chunks", type=int, default=10, help="chunks per round, each taken on both in turn")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.attempts // CONNECTIONS // args.chunks < 1:
        parser.error("--attempts must be at least 8 times --chunks")
    with tempfile.TemporaryDirectory(prefix="voicegate-bench-") as tmp:
        Path(tmp).chmod(0o755)
        baseline_dir = baseline_supabase_dir(args.since, Path(tmp) / "supabase")
        pg = EmbeddedPostgres(Path(tmp) / "pgdata", port=free_port(), settings=FAST_UNSAFE_SETTINGS)
        pg.ensure_running()
        try:
            with psycopg.connect(pg.dsn, autocommit=True) as admin:
                admin.execute("create database bench_baseline")
            baseline_dsn = psycopg.conninfo.make_conninfo(pg.dsn, dbname="bench_baseline")
            migrate(baseline_dsn, baseline_dir)
            migrate(pg.dsn)
            print(f"baseline: the migrations before {args.since}; new: all of them; project webhook {args.webhook}")
            asyncio.run(compare(baseline_dsn, pg.dsn, args))
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
