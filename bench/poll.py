"""Benchmark: the route clients poll until a voice may launch, `GET /v1/reflections/{id}/voice`, on a reflection whose
preview is ready (its state links the preview with a signed URL, once the file is known to be the one voicegate
wrote) beside the same route on a reflection with no voice yet, both driven by `wrk` in the same run.

    python bench/poll.py [--seconds 5] [--connections 16]

A real `voicegate up` (the `local` provider, the Storage stand-in in the API process) clones a voice for one
reflection from `docs/quickstart-sample.wav` and makes its preview; another reflection is left without a voice.
Then each route gets a one-second warm-up and the two run back to back, `--rounds` times in turn, so a busy
machine slows both alike; the figures are each route's median round. The
API process's CPU per request is printed beside each, and the bytes it read per request (files and sockets, from
/proc), beside the preview's size: a poll that hashed the file would read all of it. Target: the ready state at
>= 0.8 of the state without a preview.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api import WRK, Result, _row, dev_token, wait_ready, wrk  # noqa: E402
from standins.postgres import free_port  # noqa: E402 - after the path setup above

TARGET = 0.8
SAMPLE = ROOT / "docs" / "quickstart-sample.wav"


def ready_reflection(api: httpx.Client) -> str:
    """A reflection whose cloned voice has a ready preview."""
    reflection = api.post("/v1/reflections", json={"name": "polled"}).raise_for_status().json()["id"]
    api.post(
        f"/v1/reflections/{reflection}/voice/clone",
        data={"consent": "true", "language": "en"},
        files={"file": ("sample.wav", SAMPLE.read_bytes(), "audio/wav")},
    ).raise_for_status()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = api.get(f"/v1/reflections/{reflection}/voice").raise_for_status().json()
        if state["voice"].get("previewStatus") == "ready" and state.get("previewUrl"):
            return str(reflection)
        if state["voice"].get("status") == "failed":
            raise RuntimeError(f"the clone failed: {state}")
        time.sleep(0.2)
    raise RuntimeError("no ready preview within 300 s")


def bytes_read(pid: int) -> int:
    """Bytes the process has read through system calls, files and sockets alike (/proc/<pid>/io `rchar`)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError(f"no rchar in /proc/{pid}/io")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="turns of the two routes, back to back")
    args = parser.parse_args()
    if not Path(WRK).exists():
        sys.exit("wrk is missing: run `bash .ci/ensure-packages` (it installs Debian's wrk)")

    root = Path(tempfile.mkdtemp(prefix="voicegate-poll-"))
    env = {
        **os.environ,
        "VOICEGATE_DATA_DIR": str(root / "data"),
        "VOICEGATE_PORT": str(free_port()),
        "VOICEGATE_PG_PORT": str(free_port()),
        "VOICEGATE_LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    base = f"http://127.0.0.1:{env['VOICEGATE_PORT']}"
    with (root / "up.log").open("wb") as sink:
        up = subprocess.Popen(
            [sys.executable, "-m", "voicegate.cli", "up"], env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_ready(f"{base}/readyz", deadline=180)
        token = dev_token(env, "poll@example.test")
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
            ready = ready_reflection(api)
            empty = api.post("/v1/reflections", json={"name": "no voice"}).raise_for_status().json()["id"]
            preview = api.get(api.get(f"/v1/reflections/{ready}/voice").json()["previewUrl"])
            preview_bytes = len(preview.raise_for_status().content)
        urls = {"with a ready preview": f"{base}/v1/reflections/{ready}/voice"}
        urls["with no voice"] = f"{base}/v1/reflections/{empty}/voice"
        for url in urls.values():
            wrk(url, 1, args.connections, server=up.pid, token=token)
        rounds: dict[str, list[tuple[Result, float]]] = {name: [] for name in urls}
        for _ in range(args.rounds):
            for name, url in urls.items():
                before = bytes_read(up.pid)
                result = wrk(url, args.seconds, args.connections, server=up.pid, token=token)
                rounds[name].append((result, (bytes_read(up.pid) - before) / max(1.0, result.rps * args.seconds)))
        measured = {name: sorted(runs, key=lambda run: run[0].rps)[len(runs) // 2] for name, runs in rounds.items()}
        print(
            f"wrk: 1 thread, {args.connections} connections, {args.seconds:g} s per route, the median of"
            f" {args.rounds} rounds; `voicegate up`"
        )
        header = f"{'req/s':>7} {'p50':>6} {'p99':>6} {'err':>4} {'cpu µs':>6} {'bytes read':>10}"
        print(f"{'GET /v1/reflections/{id}/voice':30} {header}")
        for name, (result, read) in measured.items():
            print(f"{name:30} {_row(result)} {read:10.0f}")
        ratio = measured["with a ready preview"][0].rps / measured["with no voice"][0].rps
        verdict = "meets" if ratio >= TARGET else "MISSES"
        print(f"the preview is {preview_bytes} bytes; bytes read are the API process's, per request")
        print(f"ready preview: {ratio:.2f} x the state with no voice (target >= {TARGET}) {verdict}")
    finally:
        up.terminate()
        up.wait(timeout=60)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
