"""Benchmark: scaling out on one Postgres, on this machine: worker processes, then API processes.

    python bench/scale.py [--flows 40] [--workers 1,2,4] [--seconds 8] [--connections 16] [--quick]
                          [--profile DIR] [--no-api] [--cpu-threads N]

About three minutes; `--quick` (16 flows per run, 3 s of wrk) shows it works in two or three, its
figures rougher (one flow read again is a tenth of a run).

Everything runs beside one real `voicegate up --no-consumers` (its own queue consumers off, so every
message is a worker process's) on a free port, its embedded Postgres started first with fsync off as
the other benchmarks' (`up` adopts it), every setting at its default. The ElevenLabs fake answers at the
HTTP boundary at once, in a process of its own (`python -m fakes elevenlabs`). Each flow's sample is real
speech, 6 s of one speaker's shared LibriSpeech clips (CC BY 4.0; `--speech`, by default the clips
VOICEGATE_SPEECH_CLIPS points to) at 48 kHz with a second of room tone either side (devkit/clips.py), no two
the same file.

(a) 1, 2 and 4 `voicegate worker` processes (each found `up`'s API and Storage in the data directory),
    N PRD flows per run: a reflection, its voice cloned from an uploaded sample (checked, cleaned and
    enrolled), the preview spoken, and a synthesis job in that voice, asked for at once (it waits for
    the clone) and finished. Submitted over HTTP, 8 at a time; done is watched in the database, so that
    polling does not load the API. Per run: flows/s (one clone attempt each: attempts/s) until 90 % of
    the flows had finished (a flow whose message is read again waits out the visibility timeout, and
    would make the run's figure its own), the time until all had, the queue messages sent, each flow's
    time from its reflection to its job's end (median and slowest), deliveries that failed
    (`voicegate.queue_message_errors`), dead letters, messages read more than once (pgmq `read_ct` > 1)
    and duplicate provider voices per sample (the fake's voices by enrolment key). A worker's CPU executor
    has a thread per core by default, so one worker alone can keep every core busy; `--cpu-threads N`
    (VOICEGATE_CPU_WORKERS) gives each worker N, to see what a second worker adds where the first
    leaves cores free, as on a machine per worker. What saturates: the
    CPU cores each party kept busy until 90 % had finished (workers, `up`, Postgres with all its
    backends, the fake, this bench with wrk; `others` is the rest of the machine, from /proc/stat), and
    backends waiting on a lock (`pg_stat_activity`, `wait_event_type = 'Lock'`, sampled every 0.2 s),
    with what held it and what waited.
(b) `GET /v1/reflections/{id}/voice` (a reflection whose voice and preview are ready: RLS reads and a
    signed preview URL) driven by `wrk` (bench/api.py) against one API process, then two on the same
    port: `up` and a `voicegate serve` beside it, both with VOICEGATE_REUSE_PORT (SO_REUSEPORT; the
    kernel spreads wrk's connections between them). 16 connections by default: one user's, and
    VOICEGATE_USER_CONCURRENCY (32 in flight per process) answers a 33rd with a 429. `--no-api` skips it.

`--profile DIR` runs py-spy (`PY_SPY`, else the one on the PATH, else /tmp/tools/bin/py-spy) on each worker
process from the moment it listens until its run's flows have finished, 200 samples a second (its threads that
run or wait for a core; idle ones left out), and writes each as `workers-<count>-<n>.txt` (py-spy's raw,
collapsed stacks) in DIR: `python bench/profile_flow.py DIR/workers-1-0.txt --core-s 0.55` puts them into the
flow's parts.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend import queues  # noqa: E402 - after the path setup above
from backend.providers.elevenlabs import KEY_LABEL  # noqa: E402
from bench.api import WRK, cpu_seconds, wrk  # noqa: E402
from bench.lifecycle import failures  # noqa: E402
from devkit.clips import LIBRISPEECH, speech_sample  # noqa: E402
from devkit.up import REPO, Running, dev_token, running_up, start_worker, wait_for  # noqa: E402
from fakes import ElevenLabsFake  # noqa: E402
from standins.postgres import FAST_UNSAFE_SETTINGS, PASSFILE, EmbeddedPostgres, free_port  # noqa: E402

#: py-spy, the sampling profiler `--profile` runs on each worker.
PY_SPY = os.environ.get("PY_SPY") or shutil.which("py-spy") or "/tmp/tools/bin/py-spy"  # noqa: S108 - the dev machine's

TEXT = "Hello there. This voice was cloned a moment ago, and it speaks."
#: Flows submitted at once (uploads of ~1 MB each): enough to keep the workers fed.
SUBMITTING = 8
#: The share of a run's flows whose pace is its throughput: a flow whose message is read again waits out
#: the visibility timeout (30 s), and the lease (60 s), and would otherwise make the run's figure its own.
MOST = 0.9
#: The targets: a worker's core-seconds a flow, and what two workers give against one in the same run.
CORE_S_TARGET = 0.4
TWO_WORKERS_TARGET = 1.6
#: A worker's consumers, each with a LISTEN connection: one per work queue.
CONSUMERS = len(queues.WORK_QUEUES)
_LISTENING = "select count(*) from pg_stat_activity where query like 'LISTEN %'"
#: Client backends, and for one waiting on a lock what holds it: the holder's state and last statement.
_ACTIVITY = r"""
select a.wait_event_type, a.wait_event, a.state,
       case when a.wait_event_type = 'Lock' then
         (select string_agg(b.state || ': ' || left(regexp_replace(b.query, '\s+', ' ', 'g'), 70), ' / ')
            from pg_stat_activity b where b.pid = any(pg_blocking_pids(a.pid)))
       end,
       case when a.wait_event_type = 'Lock' then left(regexp_replace(a.query, '\s+', ' ', 'g'), 70) end
  from pg_stat_activity a
 where a.backend_type = 'client backend' and a.pid <> pg_backend_pid()
"""


# -- what the machine's CPUs did --------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent on anything but idling since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])


def bench_cpu_seconds() -> float:
    """This process's CPU seconds and those of the children it has waited for (wrk), not of those still
    running (the servers and workers it started, which are groups of their own)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass
class CpuGroups:
    """Named groups of processes whose CPU time (with their children's) is read together, with this bench's."""

    groups: dict[str, list[int]]

    def read(self) -> dict[str, float]:
        seconds = {name: sum(_alive_cpu(pid) for pid in pids) for name, pids in self.groups.items()}
        seconds["bench"] = bench_cpu_seconds()
        seconds["machine"] = machine_busy_seconds()
        return seconds

    @staticmethod
    def cores(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
        """Cores each group kept busy on average between two reads; `others` is what the rest of the
        machine did meanwhile."""
        used = {name: (after[name] - before[name]) / wall for name in before}
        used["others"] = max(0.0, used.pop("machine") - sum(used.values()))
        return used


def _alive_cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid, children=True)
    except FileNotFoundError:
        return 0.0


# -- what Postgres's backends waited on ---------------------------------------------------------------


@dataclass
class Activity:
    """Client backends sampled from pg_stat_activity: how many were active, how many waited on a lock."""

    samples: int = 0
    active: int = 0
    lock_waits: int = 0
    most_lock_waits: int = 0
    sampled_with_a_lock_wait: int = 0
    lock_events: collections.Counter[str] = field(default_factory=collections.Counter)
    blockers: collections.Counter[str] = field(default_factory=collections.Counter)
    waiters: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, rows: list[tuple[Any, ...]]) -> None:
        waiting = [event for kind, event, _, _, _ in rows if kind == "Lock"]
        self.samples += 1
        self.active += sum(1 for _, _, state, _, _ in rows if state == "active")
        self.blockers.update(blocker for kind, _, _, blocker, _ in rows if kind == "Lock" and blocker)
        self.waiters.update(waiter for kind, _, _, _, waiter in rows if kind == "Lock" and waiter)
        self.lock_waits += len(waiting)
        self.most_lock_waits = max(self.most_lock_waits, len(waiting))
        self.sampled_with_a_lock_wait += bool(waiting)
        self.lock_events.update(waiting)

    def summary(self) -> str:
        n = max(self.samples, 1)
        events = ", ".join(f"{event} {count}" for event, count in self.lock_events.most_common(3)) or "none"
        held = "".join(f"\n      held by {count}x {blocker}" for blocker, count in self.blockers.most_common(3))
        held += "".join(f"\n      waited for by {count}x {waiter}" for waiter, count in self.waiters.most_common(3))
        return (
            f"active backends {self.active / n:.1f} on average; waiting on a lock {self.lock_waits / n:.2f} on"
            f" average, at most {self.most_lock_waits}, in {self.sampled_with_a_lock_wait / n:.0%} of"
            f" {self.samples} samples (lock kinds: {events}){held}"
        )


@contextlib.contextmanager
def sampling(dsn: str, every: float = 0.2) -> Iterator[Activity]:
    """pg_stat_activity sampled every `every` seconds, on a connection of its own, while the block runs."""
    activity = Activity()
    stop = threading.Event()

    def run() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.wait(every):
                activity.add(conn.execute(_ACTIVITY).fetchall())

    thread = threading.Thread(target=run, name="activity", daemon=True)
    thread.start()
    try:
        yield activity
    finally:
        stop.set()
        thread.join(timeout=10)


# -- (a) worker processes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    reflection: str
    attempt: str
    sample: str
    job: str


@dataclass
class WorkerRun:
    workers: int
    flows: int
    #: Seconds until MOST of the flows had finished, and until all had (or the run gave up).
    most_seconds: float
    wall: float
    finished: int
    succeeded: int
    median_flow: float
    slowest_flow: float
    messages: int
    read_again: int
    failed_deliveries: int
    dead_letters: int
    duplicate_voices: int
    cores: dict[str, float]
    activity: Activity

    @property
    def rate(self) -> float:
        """Flows (attempts) per second until MOST of them had finished."""
        return math.floor(MOST * self.flows) / self.most_seconds


async def _asked(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> Any:
    """One request of a flow; 429 and 503 (busy, or a dependency away) are retried after Retry-After."""
    for _ in range(60):
        response = await client.request(method, url, **kwargs)
        if response.status_code not in (429, 503):
            return response.raise_for_status().json()
        await asyncio.sleep(float(response.headers.get("retry-after", "1")))
    raise RuntimeError(f"{method} {url} still refused after a minute: {response.text}")


async def submit(base_url: str, tokens: list[str], samples: list[bytes]) -> list[Flow]:
    """Start one flow per sample: a reflection, its clone from the sample, and a job in its voice."""
    gate = asyncio.Semaphore(SUBMITTING)

    async def one(client: httpx.AsyncClient, n: int, sample: bytes) -> Flow:
        auth = {"Authorization": f"Bearer {tokens[n % len(tokens)]}"}
        async with gate:
            reflection = await _asked(client, "POST", "/v1/reflections", json={"name": f"scale {n}"}, headers=auth)
            clone = await _asked(
                client,
                "POST",
                f"/v1/reflections/{reflection['id']}/voice/clone",
                data={"consent": "true", "language": "en", "provider": "elevenlabs"},
                files={"file": (f"sample-{n}.wav", sample, "audio/wav")},
                headers=auth,
            )
            job = await _asked(
                client, "POST", "/api/v1/clone", json={"voiceId": clone["voiceId"], "text": TEXT}, headers=auth
            )
        return Flow(reflection["id"], clone["attemptId"], clone["sampleId"], job["jobId"])

    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        return list(await asyncio.gather(*(one(client, n, sample) for n, sample in enumerate(samples))))


_PROGRESS = """
select
  (select count(*) from voice_clone_attempts
    where id = any(%(attempts)s) and (preview_status in ('ready', 'failed') or status = 'failed')),
  (select count(*) from synthesis_jobs where id = any(%(jobs)s) and status in ('succeeded', 'failed')),
  (select count(*) from synthesis_jobs where id = any(%(jobs)s) and status = 'succeeded')
"""


def progress(conn: psycopg.Connection[Any], flows: list[Flow]) -> tuple[int, int]:
    """Flows finished (preview and job both at an end), and jobs that succeeded."""
    ids = {"attempts": [f.attempt for f in flows], "jobs": [f.job for f in flows]}
    row = conn.execute(_PROGRESS, ids).fetchone()
    assert row is not None
    return min(row[0], row[1]), row[2]


def deliveries(conn: psycopg.Connection[Any], since: float) -> tuple[int, int]:
    """Messages of the work queues sent since `since` (epoch seconds), and those read more than once."""
    total = again = 0
    for queue in queues.WORK_QUEUES:
        for table in (f"q_{queue}", f"a_{queue}"):
            query = sql.SQL(
                "select count(*), count(*) filter (where read_ct > 1) from {} where enqueued_at >= to_timestamp(%s)"
            ).format(sql.Identifier("pgmq", table))
            row = conn.execute(query, (since,)).fetchone()
            assert row is not None
            total, again = total + row[0], again + row[1]
    return total, again


_FLOW_SECONDS = """
select extract(epoch from greatest(j.finished_at, a.updated_at) - r.created_at)::float8
  from unnest(%(reflections)s::uuid[], %(attempts)s::uuid[], %(jobs)s::uuid[]) f(reflection, attempt, job)
  join reflections r on r.id = f.reflection
  join voice_clone_attempts a on a.id = f.attempt
  join synthesis_jobs j on j.id = f.job
 where j.finished_at is not null
 order by 1
"""


def flow_seconds(conn: psycopg.Connection[Any], flows: list[Flow]) -> list[float]:
    """Each finished flow's time from its reflection's creation to the later of its job's end and its
    attempt's last change (the preview), shortest first."""
    ids = {
        "reflections": [f.reflection for f in flows],
        "attempts": [f.attempt for f in flows],
        "jobs": [f.job for f in flows],
    }
    return [row[0] for row in conn.execute(_FLOW_SECONDS, ids).fetchall()]


@dataclass(frozen=True)
class FakeProcess:
    """The ElevenLabs fake served by a process of its own, and what it was asked to make."""

    process: subprocess.Popen[bytes]
    url: str

    def voices(self) -> list[dict[str, Any]]:
        headers = {"xi-api-key": ElevenLabsFake().api_key}
        voices: list[dict[str, Any]] = httpx.get(f"{self.url}/v1/voices", headers=headers, timeout=60).json()["voices"]
        return voices


@contextlib.contextmanager
def fake_provider(log: Path) -> Iterator[FakeProcess]:
    """`python -m fakes elevenlabs` on a free port, once it answers; stopped on exit."""
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "fakes", "elevenlabs", "--port", str(port), "--max-voices", "100000"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    fake = FakeProcess(process, f"http://127.0.0.1:{port}")
    try:

        def answers() -> bool:
            with contextlib.suppress(httpx.TransportError):
                return isinstance(fake.voices(), list)
            return False

        wait_for(answers, 60, "the ElevenLabs fake", process)
        yield fake
    finally:
        process.terminate()
        process.wait(30)


def duplicate_voices(conn: psycopg.Connection[Any], fake: FakeProcess, flows: list[Flow]) -> int:
    """Provider voices beyond one per sample: the fake's voices by enrolment key, keys by attempt's sample."""
    rows = conn.execute(
        "select enrolment_key, sample_id::text from voice_clone_attempts where id = any(%s)",
        ([f.attempt for f in flows],),
    ).fetchall()
    sample_of = {key: sample for key, sample in rows if key}
    per_sample = collections.Counter(sample_of.get((v["labels"] or {}).get(KEY_LABEL, "")) for v in fake.voices())
    return sum(count - 1 for sample, count in per_sample.items() if sample is not None and count > 1)


@contextlib.contextmanager
def profiling(pids: list[int], directory: Path | None, name: str) -> Iterator[None]:
    """py-spy on each of `pids` while the block runs (nothing without a `directory`), its raw stacks
    written to `directory`/`name`-<n>.txt when the block ends (SIGINT makes py-spy write and stop)."""
    if directory is None:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    outputs = [directory / f"{name}-{n}.txt" for n in range(len(pids))]
    spies = [
        subprocess.Popen(
            [PY_SPY, "record", "-p", str(pid), "-r", "200", "-f", "raw", "--nonblocking", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=(directory / f"{name}-{n}.log").open("wb"),
        )
        for n, (pid, out) in enumerate(zip(pids, outputs, strict=True))
    ]
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            try:
                spy.wait(60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait(10)


def run_workers(
    up: Running,
    fake: FakeProcess,
    tokens: list[str],
    samples: list[bytes],
    *,
    count: int,
    logs: Path,
    profile: Path | None = None,
    cpu_threads: int | None = None,
) -> WorkerRun:
    """`count` worker processes beside `up`, the flows of `samples` through them; the figures of the run
    (and with `profile`, py-spy's stacks of each worker meanwhile, in that directory)."""
    data_dir = up.pg.data_dir.parent
    dsn = up.pg.dsn
    extra = {} if cpu_threads is None else {"VOICEGATE_CPU_WORKERS": str(cpu_threads)}
    workers = [start_worker(data_dir, logs / f"worker-{count}-{n}.log", **extra) for n in range(count)]
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:

            def listening() -> bool:
                row = conn.execute(_LISTENING).fetchone()
                return row is not None and row[0] >= CONSUMERS * count

            for worker in workers:
                wait_for(listening, 120, f"{count} workers to listen", worker)
            failed_before, dead_before = failures(dsn)
            groups = CpuGroups(
                {
                    "workers": [w.pid for w in workers],
                    "up": [up.process.pid],
                    "postgres": [postmaster_pid(data_dir)],
                    "fake": [fake.process.pid],
                }
            )
            since = time.time()
            cpu_before = groups.read()
            started = time.perf_counter()
            with sampling(dsn) as activity, profiling([w.pid for w in workers], profile, f"workers-{count}"):
                flows = asyncio.run(submit(up.base_url, tokens, samples))
                deadline = started + 60 + 10 * len(flows)
                most, window = math.floor(MOST * len(flows)), None
                while (done := progress(conn, flows))[0] < len(flows) and time.perf_counter() < deadline:
                    if window is None and done[0] >= most:
                        window = (time.perf_counter() - started, groups.read())
                    time.sleep(0.1)
                wall = time.perf_counter() - started
                most_seconds, cpu_then = window or (wall, groups.read())
                cores = CpuGroups.cores(cpu_before, cpu_then, most_seconds)
            messages, read_again = deliveries(conn, since)
            seconds = flow_seconds(conn, flows)
            failed, dead = failures(dsn)
            duplicates = duplicate_voices(conn, fake, flows)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)
    return WorkerRun(
        workers=count,
        flows=len(flows),
        most_seconds=most_seconds,
        wall=wall,
        finished=done[0],
        succeeded=done[1],
        median_flow=statistics.median(seconds) if seconds else float("nan"),
        slowest_flow=seconds[-1] if seconds else float("nan"),
        messages=messages,
        read_again=read_again,
        failed_deliveries=failed - failed_before,
        dead_letters=dead - dead_before,
        duplicate_voices=duplicates,
        cores=cores,
        activity=activity,
    )


# -- (b) API processes --------------------------------------------------------------------------------


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds a socket listening on TCP `port` (what SO_REUSEPORT hands connections to)."""
    listening = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
            listening.add(f"socket:[{fields[9]}]")
    with contextlib.suppress(FileNotFoundError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if str(fd.readlink()) in listening:
                    return True
    return False


@dataclass
class ApiRun:
    processes: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cores: dict[str, float]
    activity: Activity


def measure_api(up: Running, servers: list[int], url: str, token: str, *, seconds: float, connections: int) -> ApiRun:
    """wrk on `url` for `seconds`, with the CPU of the API processes `servers` and Postgres meanwhile."""
    data_dir = up.pg.data_dir.parent
    wrk(url, 1, connections, server=servers[0], token=token)  # warm each process's pool and code paths
    groups = CpuGroups({"api": servers, "postgres": [postmaster_pid(data_dir)]})
    before = groups.read()
    started = time.perf_counter()
    with sampling(up.pg.dsn) as activity:
        result = wrk(url, seconds, connections, server=servers[0], token=token)
    cores = CpuGroups.cores(before, groups.read(), time.perf_counter() - started)
    return ApiRun(len(servers), result.rps, result.p50_ms, result.p99_ms, result.errors, cores, activity)


def run_apis(up: Running, reflection: str, token: str, seconds: float, connections: int) -> list[ApiRun]:
    """The voice-state route through one API process (`up`), then two (`up` and a `serve` on its port)."""
    url = f"{up.base_url}/v1/reflections/{reflection}/voice"
    port = int(up.base_url.rsplit(":", 1)[1])
    runs = [measure_api(up, [up.process.pid], url, token, seconds=seconds, connections=connections)]
    env = {**os.environ, "VOICEGATE_DATA_DIR": str(up.pg.data_dir.parent), "VOICEGATE_PORT": str(port)}
    log = (up.log.parent / "serve.log").open("wb")
    second = subprocess.Popen(
        [sys.executable, "-m", "voicegate.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
    )
    try:
        wait_for(lambda: listens(second.pid, port), 120, "the second API process to listen", second)
        runs.append(measure_api(up, [up.process.pid, second.pid], url, token, seconds=seconds, connections=connections))
    finally:
        second.terminate()
        second.wait(30)
        log.close()
    return runs


# -- the whole run --------------------------------------------------------------------------------------


def report(worker_runs: list[WorkerRun], api_runs: list[ApiRun], connections: int, seconds: float) -> None:
    cores = os.cpu_count()
    print(
        f"\nmachine: {cores} cores (os.cpu_count()), {len(os.sched_getaffinity(0))} usable by this process;"
        f" load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} at the end"
    )
    print(
        f"\n(a) worker processes on one Postgres: flows/s until {MOST:.0%} of the flows had finished (`90% s`),"
        " and the cores busy meanwhile (average); `all s` until every flow had, `p50 s` and `max s` a flow's"
        " time from its reflection to its job's end"
    )
    print(
        f"{'workers':>7} {'flows':>5} {'done':>5} {'ok':>4} {'90% s':>6} {'flows/s':>7} {'all s':>6} {'msgs':>5}"
        f" {'p50 s':>6} {'max s':>6} {'failed':>6} {'dead':>4} {'read>1':>6} {'dup':>4} |"
        f" {'workers':>7} {'up':>5} {'pg':>5} {'fake':>5} {'bench':>5} {'others':>6} | {'lock waits':>10}"
    )
    for run in worker_runs:
        c = run.cores
        print(
            f"{run.workers:7d} {run.flows:5d} {run.finished:5d} {run.succeeded:4d} {run.most_seconds:6.1f}"
            f" {run.rate:7.2f} {run.wall:6.1f} {run.messages:5d} {run.median_flow:6.1f}"
            f" {run.slowest_flow:6.1f} {run.failed_deliveries:6d} {run.dead_letters:4d} {run.read_again:6d}"
            f" {run.duplicate_voices:4d} | {c['workers']:7.2f} {c['up']:5.2f} {c['postgres']:5.2f}"
            f" {c['fake']:5.2f} {c['bench']:5.2f} {c['others']:6.2f} |"
            f" {run.activity.lock_waits / max(run.activity.samples, 1):10.2f}"
        )
    for run in worker_runs:
        limit = saturation(run.cores, ("workers", run.workers))
        print(f"  {run.workers} worker(s): saturates {limit}; {run.activity.summary()}")
        # Until MOST had finished, as the rate: a flow read again idles meanwhile, and idle workers still poll.
        cost = {name: run.cores[name] / run.rate for name in ("workers", "up", "postgres")}
        verdict = "meets" if cost["workers"] <= CORE_S_TARGET else "MISSES"
        print(
            f"    CPU per flow: workers {cost['workers']:.3f} core-s (target <= {CORE_S_TARGET}: {verdict}), up"
            f" {cost['up']:.3f}, postgres {cost['postgres']:.3f}: a free core runs about"
            f" {1 / (cost['workers'] + cost['up']):.1f} flows/s of workers and API, and Postgres fills one at about"
            f" {1 / cost['postgres']:.0f} flows/s"
        )
    if api_runs:
        print(f"\n(b) GET /v1/reflections/{{id}}/voice, wrk 1 thread, {connections} connections, {seconds:g} s")
        columns = f"{'api':>5} {'pg':>5} {'bench':>5} {'others':>6}"
        print(f"{'API processes':>13} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} | {columns}")
    for api in api_runs:
        c = api.cores
        print(
            f"{api.processes:13d} {api.rps:7.0f} {api.p50_ms:7.1f} {api.p99_ms:7.1f} {api.errors:6d} |"
            f" {c['api']:5.2f} {c['postgres']:5.2f} {c['bench']:5.2f} {c['others']:6.2f}"
        )
    for api in api_runs:
        limit = saturation(api.cores, ("api", api.processes))
        print(f"  {api.processes} API process(es): saturates {limit}; {api.activity.summary()}")
        api_ms, pg_ms = (api.cores[name] / api.rps * 1000 for name in ("api", "postgres"))
        print(
            f"    CPU per request: API {api_ms:.1f} core-ms, postgres {pg_ms:.1f}: a free core answers about"
            f" {1000 / api_ms:.0f} req/s, and Postgres fills one at about {1000 / pg_ms:.0f} req/s"
        )
    if len(worker_runs) > 1:
        base = worker_runs[0].rate
        gains = ", ".join(f"{r.workers}: {r.rate / base:.2f}x" for r in worker_runs[1:])
        print(f"\nflows/s against 1 worker (the baseline, same run): {gains}")
        two = next((r.rate / base for r in worker_runs if r.workers == 2), None)
        if two is not None:
            verdict = "meets" if two >= TWO_WORKERS_TARGET else "MISSES"
            print(f"two workers: {two:.2f}x one (target >= {TWO_WORKERS_TARGET}x: {verdict})")
    if len(api_runs) == 2:
        print(f"req/s, 2 API processes against 1: {api_runs[1].rps / api_runs[0].rps:.2f}x")


def saturation(cores: dict[str, float], processes: tuple[str, int]) -> str:
    """What ran out: the machine's cores when nearly all were busy (and who used them); else the one
    core each of the `processes` (name, count) can use, when they kept that busy (an event loop runs on one
    thread); else not the CPU (the wait was elsewhere: locks, I/O, the run's own pacing)."""
    total = os.cpu_count() or 1
    busy = sum(cores.values())
    parties = ", ".join(f"{name} {used:.2f}" for name, used in sorted(cores.items(), key=lambda kv: -kv[1]))
    name, count = processes
    if busy >= 0.9 * total:
        return f"the CPU ({busy:.2f} of {total} cores busy: {parties})"
    if cores[name] >= 0.9 * count:
        own = f"{cores[name]:.2f} for {count}"
        return f"the {name} processes' own core each ({own}; {busy:.2f} of {total} busy: {parties})"
    return f"not the CPU ({busy:.2f} of {total} cores busy: {parties})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=40, help="PRD flows per worker run")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts to run, comma-separated")
    parser.add_argument("--seconds", type=float, default=8.0, help="wrk's run per API configuration")
    parser.add_argument("--connections", type=int, default=16, help="wrk's connections (one user's)")
    parser.add_argument("--quick", action="store_true", help="16 flows per run and 3 s of wrk: a few minutes")
    parser.add_argument("--speech", type=Path, default=LIBRISPEECH, help="LibriSpeech speaker folders of FLAC clips")
    parser.add_argument("--profile", type=Path, help="write py-spy's raw stacks of each worker here")
    parser.add_argument("--no-api", action="store_true", help="only the worker runs, not (b)")
    parser.add_argument(
        "--cpu-threads", type=int, help="each worker's CPU executor threads (VOICEGATE_CPU_WORKERS; default: its own)"
    )
    args = parser.parse_args()
    if args.quick:
        args.flows, args.seconds = 16, 3.0
    if not Path(WRK).exists():
        sys.exit("wrk is missing: run `bash .ci/ensure-packages` (it installs Debian's wrk)")
    counts = [int(n) for n in args.workers.split(",")]

    root = Path(tempfile.mkdtemp(prefix="voicegate-bench-scale-"))
    data_dir, pg_port = root / "data", free_port()
    samples = [speech_sample(n, directory=args.speech) for n in range(args.flows * len(counts))]
    with fake_provider(root / "fake.log") as fake:
        os.environ |= {
            "VOICE_PROVIDER": "elevenlabs",
            "ELEVENLABS_API_KEY": ElevenLabsFake().api_key,
            "ELEVENLABS_BASE_URL": fake.url,
            "VOICEGATE_REUSE_PORT": "true",
        }
        # Started here with fsync off, adopted by `up` (which then leaves it to `running_up` to stop).
        EmbeddedPostgres(
            data_dir / "pgdata", port=pg_port, settings=FAST_UNSAFE_SETTINGS, passfile=data_dir / PASSFILE
        ).ensure_running()
        with running_up(root, pg_port, "--no-consumers") as up:
            users = {f"scale{n}@example.test": dev_token(up, f"scale{n}@example.test") for n in range(2)}
            tokens = list(users.values())
            worker_runs = []
            for n, count in enumerate(counts):
                threads = "" if args.cpu_threads is None else f", {args.cpu_threads} CPU thread(s) each"
                print(f"(a) {count} worker process(es){threads}, {args.flows} flows ...", flush=True)
                run_samples = samples[n * args.flows : (n + 1) * args.flows]
                worker_runs.append(
                    run_workers(
                        up,
                        fake,
                        tokens,
                        run_samples,
                        count=count,
                        logs=root,
                        profile=args.profile,
                        cpu_threads=args.cpu_threads,
                    )
                )
            with psycopg.connect(up.pg.dsn, autocommit=True) as conn:
                row = conn.execute(
                    "select r.id::text, u.email from reflections r join auth.users u on u.id = r.owner_id"
                    " where r.voice ->> 'previewStatus' = 'ready' limit 1"
                ).fetchone()
            if row is None:
                sys.exit("no flow finished: nothing to measure the voice state of (see the worker logs)")
            api_runs = []
            if not args.no_api:
                print("(b) API processes ...", flush=True)
                api_runs = run_apis(up, row[0], users[row[1]], args.seconds, args.connections)
    shutil.rmtree(root, ignore_errors=True)
    report(worker_runs, api_runs, args.connections, args.seconds)


if __name__ == "__main__":
    main()
