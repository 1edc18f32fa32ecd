"""Benchmark: one user flooding the synthesis route, against a real `voicegate up` run as in production (two API
processes, separate `voicegate worker` processes) and the ElevenLabs fake in a process of its own
(`bench/spend_fake.py`), which counts every character it is sent.

    python bench/spend.py [--phases fair,refusals,webhooks,faults,kill] [--latencies 0.3,0.05] [--clients 16,64]
                          [--jobs 5] [--api-processes 2] [--workers 2] [--checkout PATH]

The flood is `wrk` (its own process, two threads): `--clients` connections posting `POST /api/v1/clone` back to
back as one user (S), never waiting out a Retry-After, each answer counted by status and problem code. Phases, each
figure printed beside its baseline from the same run:

- `fair`: another user's (O's) one-sentence job, timed from its POST to the `succeeded` its client sees (polling
  every 20 ms), `--jobs` of them one after another, alone and then during the flood at each `--clients`, for each
  fake latency of `--latencies`; with where O's time went (the API's 202, the queue until the fake heard the text,
  speaking and storing until `finished_at`, and the poll that saw it), and the most jobs of S's queued or running
  at once, sampled every 0.1 s in the database (target: never above VOICEGATE_USER_QUEUED_JOBS, 20). Target: O's
  median at most 1.5x alone.
- `refusals`: each refusal the flood meets, by itself under `wrk` (one thread, `--refusal-connections`, 5 s), beside
  `GET /healthz` and an ordinary read (O's job's status): the API processes' CPU (from /proc, over the run) and
  Postgres's, per request. A removed user's token (401), S at VOICEGATE_USER_QUEUED_JOBS (429 `jobs_limited`), S
  at the quota (429 `quota_exceeded`). Target: a refusal the cheapest path, next to `/healthz`.
- `webhooks`: O's event delivered to O's endpoint (a receiver in the fake's process), alone, while another user's
  ten endpoints that refuse connections hold a backlog of due retries, and while a third user's ten endpoints that
  never answer have just been sent 200 deliveries. Target: within 1 s.
- `faults`: the fake answering 503, never answering and cutting answers off at random while S floods with
  `--fault-budget` characters left in their window: the characters the fake was sent in S's voice against the
  ledger's sum for S (target: equal) and against what the quota left (target: never above).
- `kill`: the same flood with the fake answering slowly, one `voicegate worker` killed with SIGKILL mid-run and
  another started; the ledger's sum against what the fake was sent (target: over by at most one piece, never
  under).

`--checkout PATH` runs `up` and the workers from another checkout (an export of an earlier commit: the figures
before a change), driven by this script.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.standard_webhooks.signing import new_secret  # noqa: E402 - after the path setup above
from backend.text import pieces  # noqa: E402
from bench.api import WRK_COUNTS, cpu_seconds, subject  # noqa: E402
from devkit.db import seed_consent  # noqa: E402
from devkit.up import Running, api_children, dev_token, is_ready, start_up, start_worker, wait_for  # noqa: E402

WRK = "/usr/bin/wrk"
#: What S asks for each time: three sentences, one piece of 175 characters.
S_TEXT = (
    "The quick brown fox jumps over the lazy dog by the river. "
    "A second sentence follows, so the job is spoken in more than one piece. "
    "And a third, to make the job a little longer."
)
O_TEXT = "Hello there, this is a short job."
QUEUED = 20
QUOTA = 200_000
SLOWDOWN_TARGET = 1.5
WEBHOOK_TARGET_S = 1.0
#: The workers' lease and message visibility, shortened so that a killed worker's jobs are taken over in seconds.
LEASE_S = 8

#: A wrk script asking as one user (its token), its answers counted by status and problem code; `body`: a POST's.
_SCRIPT = """wrk.headers["Authorization"] = "Bearer %(token)s"
%(body)s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body)
  local key = tostring(status)
  if status >= 400 then
    local code = body:match('"code":%%s*"([%%w_]+)"')
    if code then key = key .. " " .. code end
  end
  counts[key] = (counts[key] or 0) + 1
end
"""


class Fake:
    """The fake's process (`bench/spend_fake.py`), asked one line at a time."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "spend_fake.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.urls: dict[str, str] = json.loads(self._line())
        self._lock = threading.Lock()

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the fake's process ended")
        return line

    def ask(self, command: str) -> Any:
        with self._lock:
            assert self.process.stdin is not None
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
            return json.loads(self._line())

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


@dataclass
class Stack:
    """`up`, its API processes, the workers and the fake, as this run started them."""

    up: Running
    fake: Fake
    root: Path
    checkout: Path
    worker_env: dict[str, str]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: Every flood started: one a phase did not stop (it failed) is killed with the stack.
    floods: list[Flood] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.up.base_url

    @property
    def dsn(self) -> str:
        return self.up.pg.dsn

    def api_pids(self) -> list[int]:
        return [self.up.process.pid, *api_children(self.up.process.pid)]

    def postmaster_pid(self) -> int:
        return int((self.up.pg.data_dir / "postmaster.pid").read_text().split()[0])

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = self.root / f"worker-{len(self.workers)}.log"
        worker = start_worker(self.up.pg.data_dir.parent, log, cwd=self.checkout, **self.worker_env)
        self.workers.append(worker)
        return worker


@contextmanager
def stack(args: argparse.Namespace) -> Iterator[Stack]:
    fake = Fake()
    root = Path(tempfile.mkdtemp(prefix="voicegate-bench-spend-"))
    provider = {
        "VOICE_PROVIDER": "elevenlabs",
        "ELEVENLABS_API_KEY": fake.urls["key"],
        "ELEVENLABS_BASE_URL": fake.urls["elevenlabs"],
        "VOICEGATE_USER_CHARACTERS": str(QUOTA),
        "VOICEGATE_USER_QUEUED_JOBS": str(QUEUED),
        "VOICEGATE_LEASE_SECONDS": str(LEASE_S),
        "VOICEGATE_QUEUE_VT": str(LEASE_S),
    }
    settings = {**provider, "VOICEGATE_API_PROCESSES": str(args.api_processes)}
    up = start_up(root, None, "--no-consumers", cwd=args.checkout, settings=settings)
    running = Stack(up, fake, root, args.checkout, provider)
    try:
        wait_for(lambda: is_ready(up.base_url), 180, "/readyz 200", up)
        for _ in range(args.workers):
            running.start_worker()
        quiet(running)
        yield running
    finally:
        for load in running.floods:
            if load.process.poll() is None:
                load.process.kill()
                load.process.wait(timeout=30)
        for worker in running.workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in running.workers:
            worker.wait(timeout=60)
        if up.process.poll() is None:
            up.process.terminate()
            up.process.wait(timeout=60)
        up.pg.stop(mode="immediate")
        fake.close()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def quiet(run: Stack, within: float = 120) -> None:
    """Until the API processes and the workers have finished starting: each used under 5 % of a core for 1 s."""
    deadline = time.monotonic() + within
    pids = [*run.api_pids(), *(w.pid for w in run.workers)]
    before = [_cpu(pid) for pid in pids]
    while time.monotonic() < deadline:
        time.sleep(1.0)
        after = [_cpu(pid) for pid in pids]
        if all(b - a < 0.05 for a, b in zip(before, after, strict=True)):
            return
        before = after
    raise RuntimeError(f"the stack did not go quiet within {within:.0f} s of its start")


@dataclass(frozen=True)
class User:
    token: str
    id: uuid.UUID
    voice: str
    provider_voice: str


def users(run: Stack, names: list[str]) -> dict[str, User]:
    """A user per name, each with a ready ElevenLabs voice the fake holds (tokens minted at once)."""
    with ThreadPoolExecutor(len(names)) as pool:
        tokens = dict(zip(names, pool.map(lambda n: dev_token(run.up, f"{n}@example.test"), names), strict=True))
    made = {}
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        for name, token in tokens.items():
            owner = uuid.UUID(subject(token))
            provider_voice = f"v{owner.hex[:19]}"
            run.fake.ask(f"voice {provider_voice}")
            row = conn.execute(
                "insert into voices (owner_id, name, status, tts_provider, provider_voice_id, consent_id)"
                " values (%s, %s, 'ready', 'elevenlabs', %s, %s) returning id",
                (owner, name, provider_voice, seed_consent(conn, owner)),
            ).fetchone()
            assert row is not None
            made[name] = User(token, owner, str(row[0]), provider_voice)
    return made


# --- O's jobs -------------------------------------------------------------------------------------------------


@dataclass
class Timed:
    """One of O's jobs: wall-clock times of its POST, its 202, and the `succeeded` its client saw."""

    job: str
    posted: float
    accepted: float
    seen: float
    #: When the fake heard its text, and when the job's row says it finished (filled in after).
    heard: float = 0.0
    finished: float = 0.0

    @property
    def total(self) -> float:
        return self.seen - self.posted


async def timed_job(client: httpx.AsyncClient, user: User, refused: Counter[str]) -> Timed:
    """One of O's jobs, timed from its first POST; a refusal (a 429 or 503, counted in `refused`) is sent again
    after its Retry-After, as a client would, and a status read that fails is read again."""
    headers = {"Authorization": f"Bearer {user.token}"}
    posted = time.time()
    deadline = time.monotonic() + 120
    while True:
        answer = await client.post("/api/v1/clone", json={"voiceId": user.voice, "text": O_TEXT}, headers=headers)
        if answer.status_code == 202:
            break
        if answer.status_code not in {429, 503} or time.monotonic() > deadline:
            raise RuntimeError(f"O's job was refused: {answer.status_code} {answer.text[:200]}")
        refused[f"{answer.status_code} {answer.json().get('code')}"] += 1
        await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
    accepted = time.time()
    job = answer.json()["jobId"]
    while time.monotonic() < deadline:
        read = await client.get(f"/api/v1/clone/{job}/status", headers=headers)
        if read.status_code != 200:
            refused[f"{read.status_code} {read.json().get('code')} (status)"] += 1
            await asyncio.sleep(0.02)
            continue
        status = read.json()["status"]
        if status == "succeeded":
            return Timed(job, posted, accepted, time.time())
        if status in {"failed", "canceled"}:
            raise RuntimeError(f"O's job ended {status}")
        await asyncio.sleep(0.02)
    raise RuntimeError("O's job did not end within 120 s")


def o_jobs(run: Stack, user: User, jobs: int, refused: Counter[str] | None = None) -> list[Timed]:
    """`jobs` of O's jobs one after another (after one not counted), each with where its time went; what O was
    refused on the way counted in `refused`."""
    refused = Counter() if refused is None else refused

    async def go() -> list[Timed]:
        async with httpx.AsyncClient(base_url=run.base, timeout=60) as client:
            await timed_job(client, user, Counter())
            return [await timed_job(client, user, refused) for _ in range(jobs)]

    timed = asyncio.run(go())
    heard = run.fake.ask(f"sent {user.provider_voice}")["arrivals"]
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        for one in timed:
            one.heard = min((t for t in heard if t >= one.posted), default=float("nan"))
            row = conn.execute(
                "select extract(epoch from finished_at) from synthesis_jobs where id = %s", (one.job,)
            ).fetchone()
            one.finished = float(row[0]) if row else float("nan")
    return timed


def parts(timed: list[Timed], latency: float) -> str:
    """Medians (ms) of where O's time went: to the 202, from it until the fake heard the text, the fake's `latency`
    and then until the job's row says it finished (the worker: mark, sign, store), and until O's poll saw it."""

    def med(values: list[float]) -> float:
        return statistics.median(values) * 1000

    return (
        f"202 {med([t.accepted - t.posted for t in timed]):5.0f}"
        f" | queue {med([t.heard - t.accepted for t in timed]):5.0f}"
        f" | fake {latency * 1000:3.0f}"
        f" + after {med([t.finished - t.heard - latency for t in timed]):5.0f}"
        f" | seen {med([t.seen - t.finished for t in timed]):4.0f}"
    )


# --- the flood --------------------------------------------------------------------------------------------------


@dataclass
class Flood:
    """`wrk` flooding `POST /api/v1/clone` as one user until stopped."""

    process: subprocess.Popen[str]
    clients: int
    started: float

    def stop(self) -> dict[str, Any]:
        """Stop wrk; what it counted."""
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=60)
        seconds = time.monotonic() - self.started
        counts: dict[str, int] = {}
        requests = 0
        for line in out.splitlines():
            if line.startswith("COUNTS "):
                counts = json.loads(line[len("COUNTS ") :])
            elif " requests in " in line:
                requests = int(line.split()[0])
        return {"requests": requests, "seconds": seconds, "counts": dict(sorted(counts.items()))}


def script(run: Stack, token: str, body: str | None) -> Path:
    """A wrk script asking as `token`'s user: a POST of `body` (JSON), or a GET."""
    path = run.root / f"wrk-{uuid.uuid4().hex[:6]}.lua"
    post = f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = \'{body}\''
    path.write_text(_SCRIPT % {"token": token, "body": post if body is not None else ""} + WRK_COUNTS)
    return path


def _dies_with_the_bench() -> None:
    """In a child before it runs wrk: SIGKILL once this bench's thread is gone, however the bench ends."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


#: prctl's option that sends the calling process a signal when its parent thread dies.
_PR_SET_PDEATHSIG = 1


def flood(run: Stack, user: User, clients: int, text: str = S_TEXT) -> Flood:
    """`wrk` flooding as `user` from `clients` connections, until `Flood.stop` (or the end of the run's stack)."""
    lua = script(run, user.token, json.dumps({"voiceId": user.voice, "text": text}))
    command = [WRK, "-t2", f"-c{clients}", "-d3600s", "--timeout", "10s", "-s", str(lua)]
    process = subprocess.Popen(
        [*command, f"{run.base}/api/v1/clone"],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_dies_with_the_bench,  # noqa: PLW1509 - no lock taken
    )
    load = Flood(process, clients, time.monotonic())
    run.floods.append(load)
    return load


class QueuedSampler(threading.Thread):
    """The most jobs of one user queued or running at once, read every 0.1 s."""

    def __init__(self, dsn: str, owner: uuid.UUID) -> None:
        super().__init__(daemon=True)
        self.dsn, self.owner, self.most = dsn, owner, 0
        self.done = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.done.wait(0.1):
                self.most = max(self.most, active(conn, self.owner))

    def __enter__(self) -> QueuedSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()


def active(conn: psycopg.Connection[Any], owner: uuid.UUID) -> int:
    row = conn.execute(
        "select count(*) from synthesis_jobs where owner_id = %s and status in ('queued', 'processing')", (owner,)
    ).fetchone()
    return int(row[0]) if row else 0


class CpuUse:
    """The CPU each part of the stack used over a stretch of the run: cores busy, from /proc."""

    def __init__(self, run: Stack, flood: Flood | None = None) -> None:
        self.run, self.flood = run, flood
        self.started = time.monotonic()
        self.before = self._now()

    def _groups(self) -> dict[str, list[int]]:
        groups = {
            "API": self.run.api_pids(),
            "workers": [w.pid for w in self.run.workers if w.poll() is None],
            "fake": [self.run.fake.process.pid],
        }
        if self.flood is not None:
            groups["wrk"] = [self.flood.process.pid]
        return groups

    def _now(self) -> dict[str, float]:
        used = {name: sum(_cpu(pid) for pid in pids) for name, pids in self._groups().items()}
        used["Postgres"] = cpu_seconds(self.run.postmaster_pid(), children=True)
        used["the machine"] = _machine_busy()
        return used

    def cores(self) -> str:
        after, seconds = self._now(), time.monotonic() - self.started
        parts = [f"{name} {(after[name] - self.before.get(name, 0.0)) / seconds:.2f}" for name in after]
        return "cores busy: " + ", ".join(parts)


def _machine_busy() -> float:
    """Seconds all cores have been busy since boot (/proc/stat: every state but idle and iowait)."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def settle(run: Stack, owner: uuid.UUID, within: float = 240) -> None:
    """Until none of `owner`'s jobs is queued or running."""
    deadline = time.monotonic() + within
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        while active(conn, owner):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{owner}'s jobs did not end within {within:.0f} s")
            time.sleep(0.2)


def wait_until_queued(run: Stack, owner: uuid.UUID, jobs: int, within: float = 20) -> None:
    deadline = time.monotonic() + within
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        while active(conn, owner) < jobs:
            if time.monotonic() > deadline:
                return  # the flood could not fill the queue (the quota): measured as it is
            time.sleep(0.05)


def fair(run: Stack, args: argparse.Namespace) -> None:
    combos = [(latency, clients) for latency in args.latencies for clients in args.clients]
    people = users(run, ["other", *[f"flood-{n}" for n in range(len(combos))]])
    o = people["other"]
    floods = iter(people[f"flood-{n}"] for n in range(len(combos)))
    print(f"\n## fair: O's job ({O_TEXT!r}), {args.jobs} one after another, from POST to `succeeded` seen")
    print(f"   S floods POST /api/v1/clone with wrk (2 threads); VOICEGATE_USER_QUEUED_JOBS {QUEUED}; medians, ms")
    verdicts = []
    for latency in args.latencies:
        run.fake.ask(f"latency {latency}")
        use = CpuUse(run)
        alone = o_jobs(run, o, args.jobs)
        base = statistics.median(t.total for t in alone)
        print(f"latency {latency:g} s, alone:          {base * 1000:6.0f}          ({parts(alone, latency)})")
        print(f"     {use.cores()}")
        for clients in args.clients:
            s = next(floods)
            with QueuedSampler(run.dsn, s.id) as sampler:
                load = flood(run, s, clients)
                wait_until_queued(run, s.id, QUEUED)
                use = CpuUse(run, load)
                refused: Counter[str] = Counter()
                loaded = o_jobs(run, o, args.jobs, refused)
                cores = use.cores()
                answers = load.stop()
            settle(run, s.id)
            median = statistics.median(t.total for t in loaded)
            ratio = median / base
            print(
                f"latency {latency:g} s, {clients:3d} clients: {median * 1000:6.0f} {ratio:5.2f}x"
                f"   ({parts(loaded, latency)})   max {max(t.total for t in loaded) * 1000:.0f}"
            )
            rate = answers["requests"] / answers["seconds"]
            print(
                f"     S: {answers['requests']} answers in {answers['seconds']:.1f} s ({rate:.0f}/s)"
                f" {answers['counts']}; queued or running at most {sampler.most} (bound {QUEUED})"
            )
            print(f"     {cores}")
            if refused:
                print(f"     O was refused on the way (and asked again): {dict(refused)}")
            verdicts.append(
                f"latency {latency:g} s, {clients} clients: {ratio:.2f}x"
                f" {'meets' if ratio <= SLOWDOWN_TARGET else 'MISSES'} (target ≤ {SLOWDOWN_TARGET}x);"
                f" bound {'held' if sampler.most <= QUEUED else 'BROKEN'}"
            )
    for verdict in verdicts:
        print(verdict)


# --- the refusals' cost -------------------------------------------------------------------------------------


def idle_cpu(run: Stack, seconds: float) -> dict[str, float]:
    """The CPU seconds the API processes and Postgres use over `seconds` with nothing asked of them."""
    pids = run.api_pids()
    api, pg = sum(cpu_seconds(pid) for pid in pids), cpu_seconds(run.postmaster_pid(), children=True)
    time.sleep(seconds)
    return {
        "api": sum(cpu_seconds(pid) for pid in pids) - api,
        "pg": cpu_seconds(run.postmaster_pid(), children=True) - pg,
    }


def wrk_cpu(
    run: Stack,
    url: str,
    *,
    token: str | None = None,
    body: str | None = None,
    seconds: float = 5,
    connections: int = 32,
    idle: dict[str, float] | None = None,
) -> dict[str, Any]:
    """One wrk run (1 thread, `connections`): requests/s, statuses, and the API's and Postgres's CPU µs a request,
    less what they use `idle` over as long."""
    command = [WRK, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s"]
    if token is not None:
        command += ["-s", str(script(run, token, body))]
    pids = run.api_pids()
    api_before = sum(cpu_seconds(pid) for pid in pids)
    pg_before = cpu_seconds(run.postmaster_pid(), children=True)
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    api = sum(cpu_seconds(pid) for pid in pids) - api_before - (idle or {}).get("api", 0.0)
    pg = cpu_seconds(run.postmaster_pid(), children=True) - pg_before - (idle or {}).get("pg", 0.0)
    requests = int(next(line for line in out.splitlines() if " requests in " in line).split()[0])
    counts: dict[str, int] = next((json.loads(line[7:]) for line in out.splitlines() if line.startswith("COUNTS ")), {})
    return {
        "rps": requests / seconds,
        "api_us": api / max(requests, 1) * 1e6,
        "pg_us": pg / max(requests, 1) * 1e6,
        "counts": counts,
    }


def refusals(run: Stack, args: argparse.Namespace) -> None:
    people = users(run, ["reader", "removed", "at-bound", "at-quota"])
    reader, removed, bound, quota = people["reader"], people["removed"], people["at-bound"], people["at-quota"]
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        # S at the bound: jobs queued that no worker takes (no message), so the bound holds for the whole run.
        for n in range(QUEUED):
            conn.execute(
                "insert into synthesis_jobs (owner_id, voice_id, input_text) values (%s, %s, %s)",
                (bound.id, bound.voice, f"held {n}"),
            )
        conn.execute(
            "select voicegate.reserve_usage(%s, 'bench', null, 'job', %s, 'preset', %s, %s, 86400)",
            (quota.id, uuid.uuid4(), QUOTA, QUOTA),
        )
        conn.execute("delete from auth.users where id = %s", (removed.id,))
    job = o_jobs(run, reader, 1)[0].job
    body = json.dumps({"voiceId": bound.voice, "text": S_TEXT})
    base = run.base
    cases = [
        ("GET /healthz (baseline)", f"{base}/healthz", None, None),
        ("GET /api/v1/clone/{id}/status", f"{base}/api/v1/clone/{job}/status", reader.token, None),
        ("POST /api/v1/clone, removed user 401", f"{base}/api/v1/clone", removed.token, body),
        ("POST /api/v1/clone, jobs_limited 429", f"{base}/api/v1/clone", bound.token, body),
        (
            "POST /api/v1/clone, quota_exceeded 429",
            f"{base}/api/v1/clone",
            quota.token,
            json.dumps({"voiceId": quota.voice, "text": S_TEXT}),
        ),
    ]
    idle = idle_cpu(run, args.refusal_seconds)
    print(f"\n## refusals: wrk 1 thread, {args.refusal_seconds:g} s each; CPU per request")
    print(
        f"   the API processes' CPU over the run less what they use idle over as long"
        f" ({idle['api'] * 1e3:.0f} ms; Postgres {idle['pg'] * 1e3:.0f} ms), over the requests answered; a refusal"
        " from memory is answered after its pause, so 32 connections ask far less often than /healthz's: the"
        " per-request figure of a rate that low carries the costs a busy loop shares out (its wake-ups, its"
        " system calls), so each is also measured from as many connections as ask about as often"
    )
    print(
        f"{'':40} {'conns':>5} {'req/s':>7} {'API µs':>7} {'PG µs':>6} {'x healthz':>9} {'API+PG cores':>12}  answers"
    )
    healthz: dict[int, float] = {}
    for name, url, token, payload in cases:
        for connections in args.refusal_connections:
            # Warm-up: the first refusal reaches the database.
            wrk_cpu(run, url, token=token, body=payload, seconds=1, connections=connections)
            got = wrk_cpu(
                run, url, token=token, body=payload, seconds=args.refusal_seconds, connections=connections, idle=idle
            )
            baseline = healthz.setdefault(connections, got["api_us"])
            print(
                f"{name:40} {connections:5d} {got['rps']:7.0f} {got['api_us']:7.0f} {got['pg_us']:6.0f}"
                f" {got['api_us'] / baseline:8.2f}x {(got['api_us'] + got['pg_us']) * got['rps'] / 1e6:12.2f}"
                f"  {got['counts'] or ''}"
            )


# --- webhooks during another user's backlog ---------------------------------------------------------------------

EVENT = "sample.ready"


def endpoint(conn: psycopg.Connection[Any], owner: uuid.UUID, url: str) -> None:
    row = conn.execute(
        "insert into webhook_endpoints (owner_id, url, events) values (%s, %s, %s) returning id", (owner, url, [EVENT])
    ).fetchone()
    assert row is not None
    conn.execute("insert into voicegate.webhook_secrets (endpoint_id, secret) values (%s, %s)", (row[0], new_secret()))


def emit(conn: psycopg.Connection[Any], owner: uuid.UUID, n: int) -> None:
    conn.execute("select voicegate.emit_webhook(%s, %s, %s::jsonb)", (EVENT, owner, json.dumps({"n": n})))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def deliveries(run: Stack, conn: psycopg.Connection[Any], owner: uuid.UUID, path: str, n: int) -> list[float]:
    """Seconds from each of `n` events of `owner` (one after another) to its arrival at the receiver's `path`."""
    seconds = []
    for k in range(n):
        before = len(run.fake.ask(f"hooks {path}"))
        sent = time.time()
        emit(conn, owner, k)
        deadline = time.monotonic() + 120
        while len(got := run.fake.ask(f"hooks {path}")) == before:
            if time.monotonic() > deadline:
                raise RuntimeError("O's delivery did not arrive within 120 s")
            time.sleep(0.01)
        seconds.append(got[-1]["at"] - sent)
    return seconds


def webhooks(run: Stack, args: argparse.Namespace) -> None:
    people = users(run, ["hooked", "careless", "hanging"])
    o, careless, hanging = people["hooked"], people["careless"], people["hanging"]
    path = "/hooks/o"
    dead = f"http://127.0.0.1:{closed_port()}/hook"
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        endpoint(conn, o.id, run.fake.urls["receiver"] + path)
        for _ in range(10):
            endpoint(conn, careless.id, dead)
        alone = deliveries(run, conn, o.id, path, args.jobs)
        for n in range(400):
            emit(conn, careless.id, n)
        backlog: list[float] = []
        due_at_emit = []
        for _ in range(args.jobs):
            # Each time while the careless user's retries are due: their deliveries have all failed once or more.
            deadline = time.monotonic() + 60
            while (due := _due_retries(conn)) < 100 and time.monotonic() < deadline:
                time.sleep(0.05)
            due_at_emit.append(due)
            backlog += deliveries(run, conn, o.id, path, 1)
        held = conn.execute("select count(*) from pgmq.q_webhook_delivery").fetchone()
        with socket.socket() as silent:
            # Receivers that take the connection and never answer: each delivery hangs until the sender gives up.
            silent.bind(("127.0.0.1", 0))
            silent.listen(64)
            for _ in range(10):
                endpoint(conn, hanging.id, f"http://127.0.0.1:{silent.getsockname()[1]}/hook")
            for n in range(20):
                emit(conn, hanging.id, n)
            deadline = time.monotonic() + 10
            while _in_hand(conn, hanging.id) < 6 and time.monotonic() < deadline:
                time.sleep(0.05)
            in_hand = _in_hand(conn, hanging.id)
            hung = deliveries(run, conn, o.id, path, args.jobs)
    print("\n## webhooks: O's event to O's endpoint, emitted to arrival at the receiver, ms")
    print(
        f"alone:                           median {statistics.median(alone) * 1000:6.0f}  max {max(alone) * 1000:6.0f}"
    )
    print(
        f"another user's dead backlog:     median {statistics.median(backlog) * 1000:6.0f}"
        f"  max {max(backlog) * 1000:6.0f}   (due retries at each emit: {due_at_emit};"
        f" {held[0] if held else '?'} deliveries queued)"
    )
    print(
        f"another user's hanging receivers: median {statistics.median(hung) * 1000:6.0f}  max {max(hung) * 1000:6.0f}"
        f"   (200 deliveries to 10 endpoints that never answer, {in_hand} in the workers' slots at the first emit)"
    )
    worst = max(*backlog, *hung)
    print(f"worst {worst:.2f} s {'meets' if worst <= WEBHOOK_TARGET_S else 'MISSES'} (target ≤ {WEBHOOK_TARGET_S} s)")


def _in_hand(conn: psycopg.Connection[Any], owner: uuid.UUID) -> int:
    """`owner`'s deliveries the workers hold (read, invisible)."""
    row = conn.execute(
        "select count(*) from pgmq.q_webhook_delivery where read_ct > 0 and vt > clock_timestamp()"
        " and message -> 'data' ->> 'ownerId' = %s",
        (str(owner),),
    ).fetchone()
    return int(row[0]) if row else 0


def _due_retries(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "select count(*) from pgmq.q_webhook_delivery where read_ct > 0 and vt <= clock_timestamp()"
    ).fetchone()
    return int(row[0]) if row else 0


# --- what the providers were sent, against the ledger ------------------------------------------------------------


def ledger(run: Stack, owner: uuid.UUID) -> int:
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        row = conn.execute(
            "select coalesce(sum(characters), 0) from voicegate.usage_events where owner_id = %s"
            " and provider = 'elevenlabs'",
            (owner,),
        ).fetchone()
    return int(row[0]) if row else 0


def preset(run: Stack, owner: uuid.UUID, left: int) -> None:
    """Leave `owner` `left` characters of their window: the rest reserved under a provider the ledger's sums here
    do not count."""
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        conn.execute(
            "select voicegate.reserve_usage(%s, 'bench', null, 'job', %s, 'preset', %s, %s, 86400)",
            (owner, uuid.uuid4(), QUOTA - left, QUOTA),
        )


def faults(run: Stack, args: argparse.Namespace) -> None:
    s = users(run, ["faulted"])["faulted"]
    preset(run, s.id, args.fault_budget)
    run.fake.ask("latency 0.05")
    run.fake.ask(f"faults {args.fault_rates}")
    with QueuedSampler(run.dsn, s.id) as sampler:
        load = flood(run, s, 16)
        time.sleep(args.fault_seconds)
        answers = load.stop()
    started = time.monotonic()
    settle(run, s.id)
    run.fake.ask("faults 0 0 0")
    sent = run.fake.ask(f"sent {s.provider_voice}")
    counted = ledger(run, s.id)
    print(f"\n## faults: the fake answering 503 / never / cut off at rates {args.fault_rates}; S floods 16 clients")
    print(
        f"S: {answers['requests']} answers in {answers['seconds']:.1f} s {answers['counts']}; queued at most"
        f" {sampler.most}; settled {time.monotonic() - started:.0f} s after"
    )
    print(f"characters the fake was sent in S's voice  {sent['characters']:>7} in {sent['requests']} requests")
    print(
        f"the ledger's sum for S                     {counted:>7}   {counted - sent['characters']:+d}"
        f" {'(equal: meets)' if counted == sent['characters'] else '(target: equal) MISSES'}"
    )
    over = sent["characters"] - args.fault_budget
    print(
        f"what the quota left S                      {args.fault_budget:>7}   sent"
        f" {'within it: meets' if over <= 0 else f'{over} over it: MISSES'}"
    )


def kill(run: Stack, args: argparse.Namespace) -> None:
    s = users(run, ["killed"])["killed"]
    preset(run, s.id, 100_000)
    run.fake.ask("latency 0.3")
    load = flood(run, s, 16)
    wait_until_queued(run, s.id, QUEUED)
    time.sleep(1.0)
    victim = run.workers[0]
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        running = active(conn, s.id)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    run.workers.remove(victim)
    run.start_worker()
    time.sleep(3.0)
    answers = load.stop()
    started = time.monotonic()
    settle(run, s.id)
    sent = run.fake.ask(f"sent {s.provider_voice}")
    counted = ledger(run, s.id)
    piece = max(len(p) for p in pieces(S_TEXT))
    over = counted - sent["characters"]
    print("\n## kill: S floods (16 clients, the fake at 0.3 s); one worker killed -9 mid-run and another started")
    print(
        f"S: {answers['requests']} answers {answers['counts']}; {running} of S's jobs queued or running at the kill;"
        f" settled {time.monotonic() - started:.0f} s after"
    )
    print(f"characters the fake was sent in S's voice  {sent['characters']:>7} in {sent['requests']} requests")
    verdict = "meets" if 0 <= over <= piece else "MISSES"
    print(
        f"the ledger's sum for S                     {counted:>7}   over by {over} ({over / piece:.2f} of a"
        f" {piece}-character piece; target: 0 to one piece) {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", default="fair,refusals,webhooks,faults,kill")
    parser.add_argument("--latencies", default="0.3,0.05", type=lambda s: [float(x) for x in s.split(",")])
    parser.add_argument("--clients", default="16,64", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--jobs", type=int, default=5, help="O's jobs (and events) per measurement")
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--refusal-seconds", type=float, default=5)
    parser.add_argument(
        "--refusal-connections", default="32,512", type=lambda s: [int(x) for x in s.split(",")], help="wrk's"
    )
    parser.add_argument("--fault-budget", type=int, default=6000, help="characters S has left in the faults phase")
    parser.add_argument("--fault-seconds", type=float, default=15)
    parser.add_argument("--fault-rates", default="0.1 0.02 0.05", help="503, no answer, cut off")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="run up and the workers from this checkout")
    args = parser.parse_args()
    if not Path(WRK).exists():
        sys.exit("wrk is missing: run `bash .ci/ensure-packages` (it installs Debian's wrk)")
    phases = {"fair": fair, "refusals": refusals, "webhooks": webhooks, "faults": faults, "kill": kill}
    wanted = args.phases.split(",")
    print(
        f"voicegate up from {args.checkout} ({_commit(args.checkout)}): {args.api_processes} API processes,"
        f" {args.workers} workers; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}"
    )
    with stack(args) as run:
        for name in wanted:
            phases[name](run, args)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


def _commit(checkout: Path) -> str:
    """The checkout's commit: git's word, or an export's `COMMIT` file."""
    found = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    marker = checkout / "COMMIT"
    return found.stdout.strip() or (marker.read_text().strip() if marker.exists() else "?")


if __name__ == "__main__":
    main()
