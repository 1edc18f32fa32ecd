"""Benchmark: the operator scripts over 10,000 attempts, beside a bare `select count(*)` of the same
table in the same run, on a fresh embedded PostgreSQL (fsync off).

    python bench/ops.py [--attempts 10000] [--batch-size 500]

Seeded: one reflection and one attempt per row (each insert runs the attempt triggers: event,
VOICE_CLONE_PROCESS message, mirror), then 20% of them claimed with their lease expired, 10% queued
with their message gone, and 10% of the mirrors drifted. Timed: `status`, the dry runs of
`recover-stale-attempts` and `repair-voice-mirror`, both with `--apply` (each once), then the dry
runs again (which must find nothing).

Target: a run over 10,000 attempts finishes in under 30 s.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.db.migrate import migrate  # noqa: E402 - after the path setup above
from scripts import recover_stale_attempts, repair_voice_mirror, status  # noqa: E402
from standins.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres, free_port  # noqa: E402

TARGET_SECONDS = 30.0
USERS = 100


def seed(dsn: str, attempts: int) -> None:
    """Users, voices, reflections and attempts in bulk, then the inconsistencies the scripts look for."""
    per_user = attempts // USERS
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email)"
            " select gen_random_uuid(), 'bench' || n || '@example.test' from generate_series(1, %s) n",
            (USERS,),
        )
        conn.execute("insert into voices (owner_id, name) select id, 'bench' from auth.users")
        conn.execute(
            "insert into reflections (owner_id, name) select u.id, 'bench ' || n"
            " from auth.users u, generate_series(1, %s) n",
            (per_user,),
        )
        conn.execute(
            "insert into voice_clone_attempts (owner_id, voice_id, reflection_id, provider, source)"
            " select r.owner_id, v.id, r.id, 'local', 'sample_upload'"
            " from reflections r join voices v on v.owner_id = r.owner_id"
        )
        # 20%: claimed by a worker that then died (through the lifecycle, then the lease backdated).
        conn.execute(
            "select voicegate.transition_attempt(id, version, 'bench', 'processing',"
            ' p_changes => \'{"lease_owner": "bench-worker"}\'::jsonb)'
            " from voice_clone_attempts where abs(hashtext(id::text)) % 10 < 2"
        )
        conn.execute(
            "update voice_clone_attempts set lease_expires_at = now() - interval '1 hour' where status = 'processing'"
        )
        conn.execute(
            "delete from pgmq.q_voice_clone_process q using voice_clone_attempts a"
            " where q.message ->> 'attemptId' = a.id::text and a.status = 'processing'"
        )
        # 10%: queued, but the message is gone.
        conn.execute(
            "with lost as (select id from voice_clone_attempts"
            "  where status = 'queued' and abs(hashtext(id::text)) % 10 = 2)"
            " , gone as (delete from pgmq.q_voice_clone_process q using lost"
            "  where q.message ->> 'attemptId' = lost.id::text)"
            " update voice_clone_attempts a set updated_at = now() - interval '1 hour' from lost where a.id = lost.id"
        )
        # (The backdating above is the attempts' own history: their mirrors say the same.)
        conn.execute(
            "update reflections r set voice = jsonb_set(voice, '{updatedAt}', to_jsonb(a.updated_at))"
            " from voice_clone_attempts a where a.reflection_id = r.id and a.updated_at < now() - interval '1 minute'"
        )
        # 10%: a drifted mirror.
        conn.execute(
            "update reflections set voice = jsonb_set(voice, '{cloneStatus}', '\"ready\"')"
            " where abs(hashtext(id::text)) % 10 = 3"
        )
        conn.execute("analyze")


def timed(label: str, run: Callable[[], object]) -> tuple[str, float, object]:
    started = time.perf_counter()
    result = run()
    return label, time.perf_counter() - started, result


def script(main: Callable[[list[str]], int], dsn: str, *args: str) -> Callable[[], dict[str, int]]:
    """Run a script in-process with --json; returns its counts (its output is kept off the terminal)."""

    def run() -> dict[str, int]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["--database-url", dsn, "--json", "--no-progress", *args])
        counts: dict[str, int] = json.loads(out.getvalue())["counts"]
        return counts

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--batch-size", default="500")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="voicegate-bench-ops-"))
    pg = EmbeddedPostgres(root / "pgdata", port=free_port(), settings=FAST_UNSAFE_SETTINGS)
    try:
        pg.ensure_running()
        migrate(pg.dsn)
        label, seconds, _ = timed("seed", lambda: seed(pg.dsn, args.attempts))
        print(f"seeded {args.attempts} attempts (triggers included) in {seconds:.1f} s")

        def baseline() -> object:
            with psycopg.connect(pg.dsn) as conn:
                return conn.execute("select count(*) from voice_clone_attempts").fetchone()

        batch = ("--batch-size", args.batch_size)
        runs = [
            timed("select count(*) from voice_clone_attempts (baseline)", baseline),
            timed("status", script(status.main, pg.dsn)),
            timed("recover-stale-attempts (dry run)", script(recover_stale_attempts.main, pg.dsn, *batch)),
            timed("repair-voice-mirror (dry run)", script(repair_voice_mirror.main, pg.dsn, *batch)),
            timed("repair-voice-mirror --apply", script(repair_voice_mirror.main, pg.dsn, "--apply", *batch)),
            timed("recover-stale-attempts --apply", script(recover_stale_attempts.main, pg.dsn, "--apply", *batch)),
            timed("repair-voice-mirror (dry run again)", script(repair_voice_mirror.main, pg.dsn, *batch)),
            timed("recover-stale-attempts (dry run again)", script(recover_stale_attempts.main, pg.dsn, *batch)),
        ]
        base = runs[0][1]
        print(f"{'run':52} {'seconds':>8} {'x baseline':>11}  counts")
        for label, seconds, result in runs:
            summary = (
                {k: v for k, v in result.items() if k in {"problems", "fixed", "unfixed", "reflections"}}
                if isinstance(result, dict)
                else result
            )
            print(f"{label:52} {seconds:8.2f} {seconds / base:11.0f}  {summary}")
        scripted = [seconds for _, seconds, _ in runs[1:]]
        verdict = "meets" if max(scripted) < TARGET_SECONDS else "MISSES"
        print(
            f"target: every run over {args.attempts} attempts < {TARGET_SECONDS:.0f} s: {verdict}"
            f" (slowest {max(scripted):.2f} s, all {len(scripted)} runs {sum(scripted):.2f} s)"
        )
    finally:
        pg.remove()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
