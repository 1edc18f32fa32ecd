"""Benchmark: voicegate's API beside bare equivalents (`bench/bare.py`: Litestar and a plain psycopg pool,
served by the same uvicorn on the same Postgres), all measured by `wrk` in the same run.

    python bench/api.py [--seconds 5] [--connections 32] [--log-level INFO]

| voicegate route                    | bare equivalent                          | target      |
| `GET /healthz` (no database)       | Litestar hello                           | ≥ 0.9 x bare |
| `GET /readyz` (`select 1`)         | pooled connection + `select 1`           | ≥ 0.8 x bare |
| `GET /v1/reflections/{id}/voice`   | RLS transaction: set_config x2, count(*) | ≥ 0.8 x bare |
| `POST /api/clone/upload-url`       | (reported beside them: a consent row, a draft voice, a signed URL) |

Both servers log as they do by default (`--log-level INFO`: voicegate's default, and uvicorn's, each writing
an access line per request, to a file in the run's directory); `--log-level WARNING` measures them with
no access log.

`wrk` (Debian's package, installed by `.ci/ensure-packages` when missing) drives the load with one
thread: a load generator written in Python would be the bottleneck instead of the server. Each route
gets a one-second warm-up, then each voicegate route and its bare equivalent run back to back, so a
busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.db.migrate import migrate  # noqa: E402 - after the path setup above
from standins.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres, free_port  # noqa: E402

WRK = "/usr/bin/wrk"
#: The end of a wrk script whose `response` counts answers in each thread's `counts` table (by whatever key it
#: chooses): the threads' counts summed, printed as one line, `COUNTS {"key": n, ...}`.
WRK_COUNTS = """function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for key, n in pairs(thread:get("counts")) do total[key] = (total[key] or 0) + n end
  end
  local parts = {}
  for key, n in pairs(total) do table.insert(parts, string.format('"%s": %d', key, n)) end
  io.write("COUNTS {" .. table.concat(parts, ", ") .. "}\\n")
end
"""
# Each request names its voice anew: a user's voices each have a name of their own (a repeat would be a 409). The
# run's random part keeps the warm-up's names and the measured run's apart.
_POST_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local urandom = io.open("/dev/urandom", "rb")
local run = urandom:read(8):gsub(".", function(c) return string.format("%02x", c:byte()) end)
urandom:close()
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format('{"name": "bench %s %d", "consent": true}', run, n))
end
"""


@dataclass(frozen=True)
class Result:
    """What wrk measured for one route, and the server's CPU time per request while it did."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds the process has used (Linux /proc); with `children`, those of its children
    too: the ones it has waited for (as a postmaster its backends), and those running now."""
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    child = _stat(int(entry.name))
                except (FileNotFoundError, ProcessLookupError):
                    continue  # ended meanwhile
                if int(child[1]) == pid:
                    ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: state, ppid, ... (utime and stime at 11 and 12)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    url: str,
    seconds: float,
    connections: int,
    *,
    server: int,
    token: str | None = None,
    script: Path | None = None,
) -> Result:
    """One wrk run (1 thread) against `url`, served by process `server`; errors are non-2xx answers plus
    socket errors."""
    command = [WRK, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    if token is not None:
        command += ["-H", f"Authorization: Bearer {token}"]
    if script is not None:
        command += ["-s", str(script)]
    cpu_before = cpu_seconds(server)
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(server) - cpu_before
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    if socket := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(n) for n in socket.groups())
    return Result(rps, p50, p99, errors, cpu / max(requests, 1) * 1e6)


def wait_ready(url: str, deadline: float = 60.0) -> None:
    """Until `url` answers 200."""
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        try:
            if httpx.get(url).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {deadline:.0f} s")


def dev_token(env: dict[str, str], user: str) -> str:
    """An access token for `user` from `voicegate token`, against the embedded stack `env` describes."""
    return subprocess.run(
        [sys.executable, "-m", "voicegate.cli", "token", "--user", user],
        env=env,
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
    ).stdout.strip()


def subject(token: str) -> str:
    """The user id a (trusted, self-made) access token carries."""
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


@dataclass(frozen=True)
class Servers:
    """The two servers under test: where they answer and their process ids."""

    vg: str
    vg_pid: int
    bare: str
    bare_pid: int


def bench(servers: Servers, token: str, seconds: float, connections: int, script: Path, *, log_level: str) -> None:
    """Each voicegate route beside its bare equivalent, then the upload-url route; print the table."""
    vg, bare, ours_pid, bare_pid = servers.vg, servers.bare, servers.vg_pid, servers.bare_pid
    reflection = httpx.post(
        f"{vg}/v1/reflections", json={"name": "bench"}, headers={"Authorization": f"Bearer {token}"}
    ).json()["id"]
    pairs = [
        ("GET /healthz", f"{vg}/healthz", "Litestar hello", f"{bare}/hello", 0.9, False),
        ("GET /readyz", f"{vg}/readyz", "pool + select 1", f"{bare}/select1", 0.8, False),
        (
            "GET /v1/reflections/{id}/voice",
            f"{vg}/v1/reflections/{reflection}/voice",
            "RLS: set_configx2 + count(*)",
            f"{bare}/rls/{reflection}",
            0.8,
            True,
        ),
    ]
    upload = f"{vg}/api/clone/upload-url"
    for _, url, _, bare_url, _, auth in pairs:  # warm both servers' pools and code paths
        wrk(url, 1, connections, server=ours_pid, token=token if auth else None)
        wrk(bare_url, 1, connections, server=bare_pid)
    wrk(upload, 1, connections, server=ours_pid, token=token, script=script)

    print(
        f"wrk: 1 thread, {connections} connections, {seconds:g} s per route; one server process each,"
        f" both logging at {log_level}"
    )
    print("req/s, then p50 and p99 latency (ms), errors (non-2xx or socket) and the server's CPU µs per request")
    header = f"{'req/s':>7} {'p50':>6} {'p99':>6} {'err':>4} {'cpu µs':>6}"
    print(f"{'voicegate route':31} {header}   {'bare equivalent':28} {header}  ratio")
    verdicts = []
    for name, url, bare_name, bare_url, target, auth in pairs:
        ours = wrk(url, seconds, connections, server=ours_pid, token=token if auth else None)
        theirs = wrk(bare_url, seconds, connections, server=bare_pid)
        ratio = ours.rps / theirs.rps
        verdicts.append(f"{name}: {ratio:.2f} x bare (target ≥ {target}) {'meets' if ratio >= target else 'MISSES'}")
        print(f"{name:31} {_row(ours)}   {bare_name:28} {_row(theirs)}  {ratio:5.2f}")
    posted = wrk(upload, seconds, connections, server=ours_pid, token=token, script=script)
    print(f"{'POST /api/clone/upload-url':31} {_row(posted)}   (a consent row, a draft voice, a signed upload URL)")
    for verdict in verdicts:
        print(verdict)


def _row(result: Result) -> str:
    return f"{result.rps:7.0f} {result.p50_ms:6.1f} {result.p99_ms:6.1f} {result.errors:4d} {result.cpu_us:6.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--log-level", default="INFO", choices=("INFO", "WARNING"), help="both servers' (default INFO)")
    args = parser.parse_args()
    if not Path(WRK).exists():
        sys.exit("wrk is missing: run `bash .ci/ensure-packages` (it installs Debian's wrk)")

    root = Path(tempfile.mkdtemp(prefix="voicegate-bench-"))
    pg = EmbeddedPostgres(root / "pgdata", port=free_port(), settings=FAST_UNSAFE_SETTINGS)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        pg.ensure_running()
        migrate(pg.dsn)
        port, bare_port = free_port(), free_port()
        env = {
            **os.environ,
            "VOICEGATE_DATA_DIR": str(root),
            "VOICEGATE_PG_PORT": str(pg.port),
            "VOICEGATE_PORT": str(port),
            "VOICEGATE_LOG_LEVEL": args.log_level,
            # One user's upload-urls for the whole run: the route's cost is measured, its bucket taken and locked
            # each time as at any setting, not the refusals a person never meets (docs/limits.md).
            "VOICEGATE_USER_CREATES": str(10**9),
            "VOICEGATE_USER_DRAFT_VOICES": str(10**9),
        }
        env.pop("DATABASE_URL", None)
        token = dev_token(env, "bench@example.test")
        logs = (root / "voicegate.log").open("wb"), (root / "bare.log").open("wb")
        servers.append(
            subprocess.Popen(
                [sys.executable, "-m", "voicegate.cli", "serve"], env=env, cwd=ROOT, stdout=logs[0], stderr=logs[0]
            )
        )
        bare_env = {**env, "BARE_DSN": pg.dsn, "BARE_USER": subject(token)}
        servers.append(
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "bench.bare:app", "--port", str(bare_port)),
                    *("--log-level", args.log_level.lower()),
                ],
                env=bare_env,
                cwd=ROOT,
                stdout=logs[1],
                stderr=logs[1],
            )
        )
        vg, bare = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        wait_ready(f"{vg}/readyz")
        wait_ready(f"{bare}/select1")
        script = root / "post.lua"
        script.write_text(_POST_SCRIPT)
        under_test = Servers(vg, servers[0].pid, bare, servers[1].pid)
        bench(under_test, token, args.seconds, args.connections, script, log_level=args.log_level)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        pg.remove()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
