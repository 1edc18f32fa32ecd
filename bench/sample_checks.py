"""Benchmark: the sample check's throughput, per process and per core, beside the bare check in the same run.

    python bench/sample_checks.py [--samples 60] [--workers 1,2]

The samples are the 60 shared LibriSpeech clips (devkit/clips.py: FLAC, 16 kHz, 3-35 s; CC BY 4.0), each
uploaded as it is, with the `local` provider's rules.

(a) The bare equivalent: the check's CPU work alone (`backend.samples.check._prepare_and_print`: decode, measure,
    clean, encode the copy, the voiceprint), called on every clip in a loop with no queue, database or
    Storage; once in one process, then split between two processes at once.
(b) voicegate: a real `voicegate up --no-consumers` (the API, its Storage stand-in and embedded Postgres) with
    every clip uploaded first over HTTP (`POST /api/v1/voice-samples`), then K `voicegate worker` processes
    started beside it at their defaults, timed from their start until every sample is checked (watched in the
    database); for each K in --workers, then one worker with VOICEGATE_CPU_WORKERS=1 (one thread checking: a
    worker's default is a thread per core).

For each: checks a second, the CPU seconds a check took in the checking processes (the workers; the API and
Postgres are reported apart), and the ratio to the bare equivalent with as many processes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

# Before NumPy loads: one OpenBLAS thread, as every voicegate process runs it (the `voicegate` package sets it), so
# that the bare check does the same work the same way. The voicegate processes are started with the environment
# as it was, so that what they run with is their own doing.
GIVEN_ENVIRONMENT = dict(os.environ)
os.environ["OPENBLAS_NUM_THREADS"] = "1"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.providers.registry import sample_rules  # noqa: E402
from backend.samples.check import _prepare_and_print  # noqa: E402
from bench.api import cpu_seconds, dev_token, wait_ready  # noqa: E402
from devkit.clips import LIBRISPEECH as CLIPS  # noqa: E402
from standins.postgres import FAST_UNSAFE_SETTINGS, PASSFILE, EmbeddedPostgres, free_port  # noqa: E402


def clips(count: int) -> list[bytes]:
    """`count` clips' bytes (FLAC), cycling through the 60 when more are asked for."""
    files = sorted(CLIPS.rglob("*.flac"))
    return [files[n % len(files)].read_bytes() for n in range(count)]


def _check_all(samples: list[bytes]) -> float:
    """The bare check of each sample in turn; this process's CPU seconds for it."""
    rules = sample_rules("local")
    start = time.process_time()
    for data in samples:
        _prepare_and_print(data, rules)
    return time.process_time() - start


@dataclass(frozen=True)
class Run:
    """One way of checking the samples: how many a second, and the CPU seconds a check took."""

    name: str
    processes: int
    checks: int
    wall: float
    cpu: float
    others: str = ""

    @property
    def rate(self) -> float:
        return self.checks / self.wall

    @property
    def cpu_per_check(self) -> float:
        return self.cpu / self.checks


def bare(samples: list[bytes], processes: int) -> Run:
    """The bare check of `samples`, split between `processes` processes at once."""
    _check_all(samples[:2])  # warm: the encoder's weights, the first FFT plans
    parts = [samples[n::processes] for n in range(processes)]
    started = time.perf_counter()
    if processes == 1:
        cpu = _check_all(parts[0])
    else:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            cpu = sum(pool.map(_check_all, parts))
    return Run(
        f"bare, {processes} process{'es' if processes > 1 else ''}",
        processes,
        len(samples),
        time.perf_counter() - started,
        cpu,
    )


def upload_all(base_url: str, token: str, samples: list[bytes]) -> None:
    """Upload every sample with consent (the API takes them; nothing checks them yet)."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for n, data in enumerate(samples):
            answer = client.post(
                "/api/v1/voice-samples",
                data={"consent": "true", "name": f"clip {n}"},
                files={"file": (f"clip-{n}.flac", data, "audio/flac")},
            )
            if answer.status_code != 202:
                raise RuntimeError(f"upload {n}: {answer.status_code} {answer.text}")


def checked(dsn: str) -> tuple[int, int]:
    """Samples checked (ready or failed), and all samples."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) filter (where status in ('ready', 'failed')), count(*) from public.voice_samples"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def voicegate(root: Path, samples: list[bytes], workers: int, cpu_workers: int | None, name: str) -> Run:
    """`voicegate up --no-consumers`, every sample uploaded, then `workers` worker processes timed until all are
    checked."""
    data_dir = root / name.replace(" ", "-").replace(",", "")
    # As `up` finds it (its superuser's password in the data directory), with fsync off as the other benchmarks'.
    pg = EmbeddedPostgres(
        data_dir / "pgdata", port=free_port(), passfile=data_dir / PASSFILE, settings=FAST_UNSAFE_SETTINGS
    )
    pg.ensure_running()
    port = free_port()
    env = {
        **GIVEN_ENVIRONMENT,
        "VOICEGATE_DATA_DIR": str(data_dir),
        "VOICEGATE_PG_PORT": str(pg.port),
        "VOICEGATE_PORT": str(port),
        "VOICEGATE_LOG_LEVEL": "WARNING",
        "VOICEGATE_UPLOAD_BACKLOG_SECONDS": "100000",  # every sample is taken: the bench measures the checks
    }
    for variable in ("DATABASE_URL", "SUPABASE_URL", "VOICEGATE_PUBLIC_URL"):
        env.pop(variable, None)
    logs = (data_dir / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "voicegate.cli", "up", "--no-consumers"], env=env, cwd=ROOT, stdout=logs, stderr=logs
    )
    started_workers: list[subprocess.Popen[bytes]] = []
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(f"{base_url}/readyz", 120)
        token = dev_token(env, "bench@example.test")
        upload_all(base_url, token, samples)
        worker_env = {**env, **({"VOICEGATE_CPU_WORKERS": str(cpu_workers)} if cpu_workers else {})}
        worker_env.pop("VOICEGATE_PORT")
        up_cpu, pg_cpu = cpu_seconds(up.pid), cpu_seconds(_postmaster(pg), children=True)
        started = time.perf_counter()
        for n in range(workers):
            with (data_dir / f"worker-{n}.log").open("wb") as log:
                started_workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "voicegate.cli", "worker"],
                        env=worker_env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=log,
                    )
                )
        deadline = started + 60 + 10 * len(samples)
        while (done := checked(pg.dsn))[0] < done[1]:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{name}: {done[0]} of {done[1]} checked before the deadline")
            for worker in started_workers:
                if worker.poll() is not None:
                    raise RuntimeError(f"{name}: a worker exited with {worker.returncode}")
            time.sleep(0.05)
        wall = time.perf_counter() - started
        cpu = sum(cpu_seconds(worker.pid, children=True) for worker in started_workers)
        others = (
            f"API {cpu_seconds(up.pid) - up_cpu:.1f} s,"
            f" Postgres {cpu_seconds(_postmaster(pg), children=True) - pg_cpu:.1f} s of CPU"
        )
        return Run(name, workers, len(samples), wall, cpu, others)
    finally:
        for process in [*started_workers, up]:
            process.send_signal(signal.SIGTERM)
        for process in [*started_workers, up]:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        logs.close()
        pg.stop(mode="immediate")


def _postmaster(pg: EmbeddedPostgres) -> int:
    return int((pg.data_dir / "postmaster.pid").read_text().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--workers", default="1,2", help="worker processes of each voicegate run (default 1,2)")
    args = parser.parse_args()
    samples = clips(args.samples)
    audio_s = sum(_seconds(data) for data in samples)
    counts = [int(n) for n in args.workers.split(",")]
    root = Path(tempfile.mkdtemp(prefix="voicegate-checks-"))
    try:
        runs = {1: bare(samples, 1), 2: bare(samples, 2)}
        measured = [runs[1], runs[2]]
        for count in counts:
            measured.append(
                voicegate(root, samples, count, None, f"voicegate, {count} worker{'s' if count > 1 else ''}")
            )
        measured.append(voicegate(root, samples, 1, 1, "voicegate, 1 worker, 1 CPU thread"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{len(samples)} samples, {audio_s:.0f} s of speech; {os.cpu_count()} cores")
    print(f"{'run':38} {'checks/s':>8} {'CPU s/check':>11} {'x bare':>7}  {'checks/s per core':>17}")
    for run in measured:
        baseline = runs[min(run.processes, 2)]
        per_core = run.checks / run.cpu
        print(
            f"{run.name:38} {run.rate:8.2f} {run.cpu_per_check:11.3f} {run.rate / baseline.rate:7.2f}"
            f"  {per_core:17.2f}  {run.others}"
        )
    one = next((r for r in measured if r.name == "voicegate, 1 worker"), None)
    two = next((r for r in measured if r.name == "voicegate, 2 workers"), None)
    if one and two:
        print(f"two worker processes: {two.rate / one.rate:.2f}x one (bare: {runs[2].rate / runs[1].rate:.2f}x)")


def _seconds(data: bytes) -> float:
    import io  # noqa: PLC0415

    import soundfile  # noqa: PLC0415

    info = soundfile.info(io.BytesIO(data))
    return float(info.frames) / float(info.samplerate)


if __name__ == "__main__":
    main()
