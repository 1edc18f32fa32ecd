"""Benchmark: how soon `voicegate up` serves again after its database comes back, under upload load,
beside the same run with reads only (the baseline), all driven by `wrk`.

    python bench/recovery.py [--clients 24] [--checkout PATH]

Each run starts a fresh `voicegate up`, lets `wrk` drive `--clients` connections (each sends a request,
waits `--pace` ms after its answer, and sends the next), and then hurts the database:

| fault     | what is done                                                | "back" is                              |
| pause     | SIGSTOP of every Postgres process for 10 s, then SIGCONT     | the SIGCONT                            |
| kill      | SIGKILL of the postmaster; `up`'s supervisor starts it again | the new server's first accepted login  |
| two kills | the kill, and again 20 s later                               | each new server's first accepted login |

The load is either uploads (`POST /api/v1/voice-samples`, a 4 s WAV of espeak-ng speech with `consent=true`) or the
baseline, reads (`GET /v1/reflections`). wrk's Lua script notes each answer's status in 100 ms buckets on
the same monotonic clock as this script (LuaJIT's FFI reads CLOCK_MONOTONIC), so no Python client competes
with the server for the two cores.

Printed per run: seconds from "back" until every 0.5 s of answers after it is at least 90 % 2xx (the target
is at most 10 s), the answers in the outage and after, and whether `up` still runs. After the upload runs,
every sample the API accepted (a 202) must end `ready`: the script waits for the consumers to work through
the backlog the run left (they check fewer samples a second than the API accepts) and counts them.
Exits 1 when a target is missed.
`--checkout` runs `up` from another checkout of voicegate (the same lock), e.g. a `git worktree` of an
older commit, for a before-and-after in one sitting.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devkit.audio_corpus import recording, speech_mono, wav_bytes  # noqa: E402 - after the path setup above
from devkit.db import postgres_pids, postmaster_pid  # noqa: E402
from devkit.up import Running, dev_token, is_ready, start_up, wait_for  # noqa: E402

WRK = "/usr/bin/wrk"
BOUNDARY = "voicegate-bench-recovery"
#: Share of 2xx answers that counts as serving again, and the width of the windows it is judged over.
SERVED_SHARE = 0.9
WINDOW_S = 0.5
PAUSE_S = 10.0
BETWEEN_KILLS_S = 20.0
WARM_S = 8.0
#: Seconds watched after the database is back (the target is to serve again within 10).
AFTER_S = 25.0
#: Longest wait for the consumers to check every sample the run left (they check fewer a second than the
#: API accepts under this load: the backlog is minutes of work).
SETTLE_S = 900.0

_LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } vg_timespec;
int clock_gettime(int clk_id, vg_timespec *tp);
]]
local clock = ffi.new("vg_timespec")
local function now()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC, as Python's time.monotonic()
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) / 1e9
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local pace = 0
function init(args)
  pace = tonumber(args[1])
  if args[2] ~= nil then
    local file = io.open(args[2], "rb")
    wrk.method = "POST"
    wrk.body = file:read("*a")
    file:close()
    wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. args[3]
  end
  answers = {}
end

function delay()
  return pace
end

function response(status, headers, body)
  local key = math.floor(now() * 10) .. (status >= 200 and status < 300 and " ok" or " " .. status)
  answers[key] = (answers[key] or 0) + 1
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for key, count in pairs(thread:get("answers")) do
      io.write("answer ", key, " ", count, "\n")
    end
  end
  io.write("socket errors ", summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, "\n")
end
"""


@dataclass
class Answers:
    """wrk's answers by 100 ms bucket (monotonic tenths of a second): 2xx and the rest by status."""

    ok: Counter[int]
    other: Counter[tuple[int, int]]
    socket_errors: int

    @classmethod
    def parse(cls, out: str) -> Answers:
        ok: Counter[int] = Counter()
        other: Counter[tuple[int, int]] = Counter()
        socket_errors = 0
        for line in out.splitlines():
            words = line.split()
            if words[:1] == ["answer"]:
                bucket, kind, count = int(words[1]), words[2], int(words[3])
                if kind == "ok":
                    ok[bucket] += count
                else:
                    other[bucket, int(kind)] += count
            elif line.startswith("socket errors"):
                socket_errors = int(words[2])
        return cls(ok, other, socket_errors)

    def between(self, start: float, end: float) -> tuple[int, Counter[int]]:
        """2xx answers, and the others by status, in [start, end)."""
        first, last = int(start * 10), int(end * 10)
        ok = sum(n for b, n in self.ok.items() if first <= b < last)
        other: Counter[int] = Counter()
        for (b, status), n in self.other.items():
            if first <= b < last:
                other[status] += n
        return ok, other

    def served_again(self, back: float, end: float) -> float | None:
        """Seconds from `back` until every window after it (to `end`) that has answers is at least SERVED_SHARE
        2xx; None when none is. A window without answers (the process held up for a moment, its answers
        come in the next) counts neither way."""
        start = back
        recovered: float | None = None
        while start + WINDOW_S <= end:
            ok, other = self.between(start, start + WINDOW_S)
            total = ok + sum(other.values())
            if total and ok < SERVED_SHARE * total:
                recovered = None
            elif total and recovered is None:
                recovered = start
            start += WINDOW_S
        return None if recovered is None else max(0.0, recovered - back)


def multipart_sample(path: Path) -> None:
    """The upload's body: a 4 s WAV of speech and the consent, as the page sends them."""
    wav = wav_bytes(recording(speech_mono(4.0)))
    path.write_bytes(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="consent"\r\n\r\ntrue\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="take.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n".encode()
        + wav
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def first_login(up: Running, deadline: float) -> float:
    """When (monotonic) the data directory's server next accepts a login; infinity when it has not by
    `deadline` (`up` gave up on it)."""
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(up.pg.dsn, connect_timeout=1):
                return time.monotonic()
        except psycopg.OperationalError:
            time.sleep(0.02)
    return math.inf


def kill_postmaster(up: Running) -> float:
    """SIGKILL the postmaster; when (monotonic) the supervisor's new server first accepted a login (infinity:
    never)."""
    os.kill(postmaster_pid(up.pg.data_dir), signal.SIGKILL)
    deadline = time.monotonic() + 60
    while up.pg.postmaster_state() == "running" and time.monotonic() < deadline:
        time.sleep(0.01)  # the signal is sent, not yet acted on
    return first_login(up, deadline)


def hurt_database(fault: str, up: Running) -> tuple[list[float], list[float]]:
    """Do `fault` to `up`'s database; when (monotonic) each blow fell, and when it was back after each."""
    kills = [time.monotonic()]
    if fault == "pause":
        pids = postgres_pids(up.pg.data_dir)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        time.sleep(PAUSE_S)  # the outage's length
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        return kills, [time.monotonic()]
    backs = [kill_postmaster(up)]
    if fault == "two kills" and backs[0] < math.inf:
        time.sleep(max(0.0, kills[0] + BETWEEN_KILLS_S - time.monotonic()))  # the kills' spacing
        kills.append(time.monotonic())
        backs.append(kill_postmaster(up))
    return kills, backs


@dataclass(frozen=True)
class Outcome:
    """One run's figures."""

    served_again_s: list[float | None]
    during: tuple[int, Counter[int]]
    after: tuple[int, Counter[int]]
    up_running: bool
    accepted: int
    samples: Counter[str]
    settled_s: float
    socket_errors: int


def run(fault: str, uploads: bool, args: argparse.Namespace, body: Path) -> Outcome:
    """One fresh `up`, wrk's load, the fault, and what came of it."""
    root = Path(tempfile.mkdtemp(prefix="voicegate-recovery-"))
    # One user's reflections for the whole run: what is measured is the outage, not the per-user limit on creates.
    up = start_up(root, cwd=args.checkout, settings={"VOICEGATE_USER_CREATES": str(10**9)})
    try:
        wait_for(lambda: is_ready(up.base_url), 120, "/readyz", up)
        token = dev_token(up, "bench@example.test")
        script = root / "answers.lua"
        script.write_text(_LUA)
        route = "/api/v1/voice-samples" if uploads else "/v1/reflections"
        extra = [str(body), BOUNDARY] if uploads else []
        seconds = WARM_S + (PAUSE_S if fault == "pause" else 2) + AFTER_S
        seconds += BETWEEN_KILLS_S if fault == "two kills" else 0
        command = [WRK, "-t2", f"-c{args.clients}", f"-d{seconds:.0f}s", "--timeout", "10s", "-s", str(script)]
        command += ["-H", f"Authorization: Bearer {token}", f"{up.base_url}{route}", "--", str(args.pace), *extra]
        load = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        time.sleep(WARM_S)  # the load runs meanwhile: this is its warm-up, not a wait for anything
        kills, backs = hurt_database(fault, up)
        hurt = kills[0]
        out, _ = load.communicate(timeout=seconds + 60)
        ended = time.monotonic()
        answers = Answers.parse(out)
        backs = [min(back, ended) for back in backs]  # a database that never came back: "never" served again
        if args.series:
            print_series(answers, hurt, ended, backs)
        ends = [*kills[1:], ended - 1]
        served = [answers.served_again(back, end) for back, end in zip(backs, ends, strict=True)]
        alive = up.process.poll() is None
        samples: Counter[str] = Counter()
        settled = 0.0
        if uploads and alive and up.pg.postmaster_state() == "running":
            samples, settled = settled_samples(up)
        return Outcome(
            served,
            answers.between(hurt, backs[0]),
            answers.between(backs[-1], ended),
            alive,
            sum(answers.ok.values()),
            samples,
            settled,
            answers.socket_errors,
        )
    finally:
        if up.process.poll() is None:
            up.process.terminate()
            up.process.wait(timeout=60)
        up.pg.stop(mode="immediate")
        if args.keep:
            print(f"  (kept: {root}; up's log is {up.log})")
        else:
            shutil.rmtree(root, ignore_errors=True)


def print_series(answers: Answers, hurt: float, ended: float, backs: list[float]) -> None:
    """Each window's answers from the fault to the end, for a closer look (`--series`)."""
    start = hurt - 2 * WINDOW_S
    while start < ended:
        mark = " <- back" if any(start <= back < start + WINDOW_S for back in backs) else ""
        print(f"  {start - hurt:+6.1f} s  {_answers(answers.between(start, start + WINDOW_S))}{mark}")
        start += WINDOW_S


def settled_samples(up: Running, within: float = SETTLE_S) -> tuple[Counter[str], float]:
    """The samples' statuses once none is pending or being checked (or `within` seconds passed), and the
    seconds that took: the consumers work through the backlog the run left."""
    started = time.monotonic()
    while True:
        with psycopg.connect(up.pg.dsn, autocommit=True) as conn:
            rows = conn.execute("select status, count(*) from public.voice_samples group by status").fetchall()
        statuses = Counter({str(status): int(count) for status, count in rows})
        took = time.monotonic() - started
        if not statuses.keys() & {"pending", "processing"} or took > within:
            return statuses, took
        time.sleep(1.0)  # the consumers' pace sets how long this takes; a second is fine grain enough


def _answers(counts: tuple[int, Counter[int]]) -> str:
    ok, other = counts
    rest = ", ".join(f"{n} x {status}" for status, n in sorted(other.items()))
    return f"{ok} x 2xx" + (f", {rest}" if rest else "")


def main() -> None:
    """Run every fault under uploads and under reads; print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=24, help="wrk's connections (default 24)")
    parser.add_argument("--pace", type=int, default=500, help="ms each connection waits between requests")
    parser.add_argument("--faults", default="pause,kill,two kills", help="comma-separated: pause, kill, two kills")
    parser.add_argument("--loads", default="uploads,reads", help="comma-separated: uploads, reads")
    parser.add_argument("--keep", action="store_true", help="keep each run's data directory and up's log")
    parser.add_argument("--series", action="store_true", help="print each window's answers around the faults")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the voicegate checkout `up` runs from")
    args = parser.parse_args()
    if not Path(WRK).exists():
        sys.exit("wrk is missing: run `bash .ci/ensure-packages` (it installs Debian's wrk)")
    body = Path(tempfile.mkdtemp(prefix="voicegate-recovery-body-")) / "sample.multipart"
    multipart_sample(body)
    print(f"wrk: 2 threads, {args.clients} connections, {args.pace} ms between a connection's requests")
    print(f"`up` from {args.checkout} ({git_head(args.checkout)}); served again = every {WINDOW_S:g} s of answers")
    print(f"after the database is back at least {SERVED_SHARE:.0%} 2xx\n")
    failed = False
    for fault in args.faults.split(","):
        for uploads in [load == "uploads" for load in args.loads.split(",")]:
            outcome = run(fault, uploads, args, body)
            load = "uploads" if uploads else "reads (baseline)"
            served = ", ".join("never" if s is None else f"{s:.1f} s" for s in outcome.served_again_s)
            print(f"{fault:9} | {load:16} | served again after: {served}")
            print(f"{'':9} | {'':16} | in the outage: {_answers(outcome.during)}")
            print(f"{'':9} | {'':16} | after it: {_answers(outcome.after)}; socket errors {outcome.socket_errors}")
            print(f"{'':9} | {'':16} | up still running: {'yes' if outcome.up_running else 'NO'}")
            if uploads:
                print(
                    f"{'':9} | {'':16} | {outcome.accepted} uploads accepted; their samples"
                    f" {outcome.settled_s:.0f} s after the run: {dict(outcome.samples)}"
                )
            failed |= not outcome.up_running or any(s is None or s > 10 for s in outcome.served_again_s)
            # wrk does not read the answers to the requests in flight as it stops (one per connection at most),
            # so the samples may outnumber the 202s it counted by as many.
            in_flight_at_the_end = range(outcome.accepted, outcome.accepted + args.clients + 1)
            failed |= uploads and (
                set(outcome.samples) != {"ready"} or outcome.samples["ready"] not in in_flight_at_the_end
            )
    shutil.rmtree(body.parent, ignore_errors=True)
    sys.exit(1 if failed else 0)


def git_head(checkout: Path) -> str:
    """The commit `checkout` is at."""
    return subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()


if __name__ == "__main__":
    main()
