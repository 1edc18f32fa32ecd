"""Benchmark: what an idle `voicegate up` costs, and how soon its consumers hear work after resting.

    python bench/idle.py [--seconds 60] [--settle 15] [--rounds 2] [--before PATH] [--gap 1.0] [--pickups 20]

A real `voicegate up` (API, in-app consumers, maintenance, its embedded Postgres; no request, no work) is left
`--settle` seconds after it answers `/readyz`, then the CPU of every thread of its processes and of its Postgres's
is summed over `--seconds` (from /proc's schedstat, in nanoseconds: a clock tick is 10 ms, as much as the whole
target over 5 s). Once with one API process and once with `VOICEGATE_API_PROCESSES=2`, each `--rounds` times;
with `--before PATH` (an export of an earlier commit with its own `.venv`), that tree's `up` in turns with this
one's, so a busy machine weighs on both alike. Targets: 2 ms of CPU per second with one API process, 3 with two.

Then the pickup after rest: a consumer of this tree listening on the queue, each insert sent after `--gap` seconds
of nothing, `--pickups` times; the time from the insert's commit to its handler. Target: p50 1 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.db.migrate import migrate  # noqa: E402 - after the path setup above
from backend.settings import settings_from_env  # noqa: E402
from bench.api import wait_ready  # noqa: E402
from bench.lifecycle import pickup_latencies, quantiles_ms  # noqa: E402
from standins.postgres import EmbeddedPostgres, free_port  # noqa: E402

TARGETS = {1: 2.0, 2: 3.0}
PICKUP_TARGET_MS = 1.0


def _children(pid: int) -> set[int]:
    """`pid` and every process below it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # ended meanwhile
            parents.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo.extend(parents.get(current, []))
    return found


def _cpu(pid: int) -> float:
    """Seconds on a CPU of all the threads of `pid` so far (0 once it has ended)."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError):
        return 0.0
    return total / 1e9


def idle_cpu(tree: Path, processes: int, *, settle: float, seconds: float) -> float:
    """Milliseconds of CPU per second an idle `up` of `tree` uses, its Postgres included."""
    root = Path(tempfile.mkdtemp(prefix="voicegate-idle-"))
    env = {
        **os.environ,
        "VOICEGATE_DATA_DIR": str(root / "data"),
        "VOICEGATE_PORT": str(free_port()),
        "VOICEGATE_PG_PORT": str(free_port()),
        "VOICEGATE_LOG_LEVEL": "WARNING",
        "VOICEGATE_API_PROCESSES": str(processes),
    }
    env.pop("DATABASE_URL", None)
    with (root / "up.log").open("wb") as sink:
        up = subprocess.Popen(
            [str(tree / ".venv" / "bin" / "python"), "-m", "voicegate.cli", "up"],
            env=env,
            cwd=tree,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(f"http://127.0.0.1:{env['VOICEGATE_PORT']}/readyz", deadline=240)
        time.sleep(settle)  # start-up's own work (the first sweep, the pools filling) is not idling
        postmaster = int((root / "data" / "pgdata" / "postmaster.pid").read_text().split()[0])
        pids = _children(up.pid) | _children(postmaster)
        before = sum(_cpu(pid) for pid in pids)
        time.sleep(seconds)
        return (sum(_cpu(pid) for pid in pids) - before) / seconds * 1000
    finally:
        up.terminate()
        up.wait(60)


async def pickups_after_rest(dsn: str, gap: float, count: int) -> list[float]:
    """Seconds from an insert to its handler, each insert after `gap` seconds of nothing."""
    return await pickup_latencies(dsn, settings_from_env({}), count, listen=True, spread=gap)


def pickups_on_a_cluster(gap: float, count: int) -> list[float]:
    """`pickups_after_rest` on a throwaway cluster with the migrations."""
    with tempfile.TemporaryDirectory(prefix="voicegate-pickup-") as tmp:
        Path(tmp).chmod(0o755)  # the cluster runs as its own user when this runs as root
        pg = EmbeddedPostgres(Path(tmp) / "pgdata", port=free_port())
        pg.ensure_running()
        try:
            migrate(pg.dsn)
            return asyncio.run(pickups_after_rest(pg.dsn, gap, count))
        finally:
            pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each idle `up` is measured")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds after /readyz before measuring")
    parser.add_argument("--rounds", type=int, default=2, help="measurements of each tree and process count")
    parser.add_argument("--before", type=Path, help="an earlier checkout (with its .venv) measured in turns")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds of nothing before each pickup")
    parser.add_argument("--pickups", type=int, default=20)
    args = parser.parse_args()

    trees = {"this tree": ROOT} | ({"before": args.before.resolve()} if args.before else {})
    print(f"load average at the start: {os.getloadavg()[0]:.1f}")
    for processes, target in TARGETS.items():
        figures: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                figures[name].append(idle_cpu(tree, processes, settle=args.settle, seconds=args.seconds))
        for name, values in figures.items():
            median = statistics.median(values)
            verdict = f"(target {target:g}: {'meets' if median <= target else 'MISSES'})" if name == "this tree" else ""
            runs = ", ".join(f"{value:.2f}" for value in values)
            print(
                f"idle, {processes} API process{'es' if processes > 1 else ''}, {name}:"
                f" {median:.2f} ms of CPU per second (runs: {runs}) {verdict}"
            )
    p50, p99 = quantiles_ms(pickups_on_a_cluster(args.gap, args.pickups))
    print(
        f"pickup after {args.gap:g} s of rest, {args.pickups} inserts: p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        f" (target p50 {PICKUP_TARGET_MS:g}: {'meets' if p50 <= PICKUP_TARGET_MS else 'MISSES'})"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
