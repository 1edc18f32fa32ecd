"""Benchmark: fair share under load. User A's time to first byte of a one-sentence `local` stream,
and A's sample check (upload to `ready`), alone and then while user B holds 32 long `local` streams, against
a real `voicegate up`; each printed beside its "alone" baseline from the same run, with the ratio (target:
A's first byte under load at most 3x alone).

    python bench/fair_share.py [--streams 32] [--user-streams N] [--repeat 5] [--checks 3]

B's load comes from a separate process (this script with `--hold`): `--streams` HTTP clients, each opening a
stream of a long text, reading it to its end and opening the next; one the server refuses (429
`streams_limited`, past VOICEGATE_USER_STREAMS) waits its Retry-After and asks again, so B always has as
many streams open as the server lets one user have. `--user-streams` sets that cap on the server (default:
the server's default); `--user-streams 32` lets B hold all 32 at once, so the fair CPU queue alone keeps A's
figures down. Both users' voices are `local` voices cloned from the quickstart sample.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.settings import settings_from_env  # noqa: E402 - after the path setup above
from bench.streaming import SAMPLE, SENTENCE, local_reflection  # noqa: E402
from devkit.streaming import stream  # noqa: E402
from devkit.up import dev_token, running_up  # noqa: E402

#: What B's streams speak, again and again: about 40 s of speech in long sentences.
LONG = " ".join(
    [
        "When the morning train pulled out of the station, the passengers settled into their seats, opened their"
        " newspapers, and watched the fields roll past the windows for the better part of an hour.",
        "Nobody noticed the small dog that had slipped aboard at the last moment, curled up beneath a bench at the"
        " back of the carriage, and fallen fast asleep among the bags and umbrellas.",
        "By the time the conductor came through to check the tickets, the dog had woken, stretched, and wandered"
        " down the aisle, stopping at every seat to sniff the shoes of each traveller in turn.",
        "The conductor, who had seen stranger things on that line, simply punched a ticket for the dog as well,"
        " tucked it under its collar, and carried on down the train without a word.",
    ]
)


@dataclass
class Load:
    """What B's clients saw, counted in the load process."""

    opened: int = 0
    refused: int = 0
    failed: int = 0
    completed: int = 0
    open_now: int = 0
    most_open: int = 0
    codes: dict[str, int] = field(default_factory=dict)


async def hold(base: str, token: str, rid: str, streams: int, ready_at: int) -> Load:
    """`streams` clients keeping B's streams open until SIGTERM; says `holding` on stdout once `ready_at`
    streams have sent their first audio."""
    load = Load()
    stop, ready = asyncio.Event(), asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    headers = {"Authorization": f"Bearer {token}"}
    path = f"{base}/v1/reflections/{rid}/speech"
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)

    async def client(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            async with http.stream("POST", path, json={"text": LONG}, headers=headers) as response:
                if response.status_code == 429:
                    load.refused += 1
                    code = json.loads(await response.aread())["code"]
                    load.codes[code] = load.codes.get(code, 0) + 1
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                    continue
                if response.status_code != 200:
                    load.failed += 1
                    await asyncio.sleep(1)
                    continue
                load.opened += 1
                body = response.aiter_raw()
                await anext(body)
                load.open_now += 1
                load.most_open = max(load.most_open, load.open_now)
                if load.open_now == ready_at and not ready.is_set():
                    ready.set()
                    print("holding", flush=True)
                try:
                    async for _ in body:
                        pass
                    load.completed += 1
                finally:
                    load.open_now -= 1

    async with httpx.AsyncClient(limits=limits, timeout=600) as http:
        tasks = [asyncio.create_task(client(http)) for _ in range(streams)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return load


def first_bytes(base: str, token: str, rid: str, repeat: int) -> list[float]:
    """A's first byte of `SENTENCE`, `repeat` streams one after another (after one warm-up)."""

    async def run() -> list[float]:
        async with httpx.AsyncClient(timeout=600) as client:
            path = f"{base}/v1/reflections/{rid}/speech"
            await stream(client, path, token, {"text": SENTENCE})
            seconds = []
            for _ in range(repeat):
                heard = await stream(client, path, token, {"text": SENTENCE})
                if heard.status != 200:
                    raise SystemExit(f"A's stream failed: {heard.status} {heard.body[:200]!r}")
                seconds.append(heard.first_byte_s)
            return seconds

    return asyncio.run(run())


def sample_checks(api: httpx.Client, repeat: int) -> list[float]:
    """Seconds from A's sample upload to its check's end (`ready`), `repeat` uploads one after another."""
    data = SAMPLE.read_bytes()
    seconds = []
    for _ in range(repeat):
        started = time.monotonic()
        files = {"file": ("sample.wav", data, "audio/wav")}
        sample_id = api.post("/api/v1/voice-samples", data={"consent": "true"}, files=files).raise_for_status()
        path = f"/api/v1/voice-samples/{sample_id.json()['sampleId']}/status"
        while (status := api.get(path).raise_for_status().json()["status"]) not in {"ready", "failed"}:
            time.sleep(0.01)
        if status != "ready":
            raise SystemExit(f"A's sample check ended {status}")
        seconds.append(time.monotonic() - started)
    return seconds


def row(name: str, alone: list[float], loaded: list[float]) -> str:
    a, b = statistics.median(alone) * 1000, statistics.median(loaded) * 1000
    return f"{name:34} {a:10.0f} {b:12.0f} {b / a:7.1f}x {max(loaded) * 1000:10.0f}"


def measure(base: str, tokens: dict[str, str], rids: dict[str, str], args: argparse.Namespace) -> None:
    headers = {"Authorization": f"Bearer {tokens['A']}"}
    with httpx.Client(base_url=base, headers=headers, timeout=600) as api:
        alone_ttfb = first_bytes(base, tokens["A"], rids["A"], args.repeat)
        alone_check = sample_checks(api, args.checks)
        cap = args.user_streams or settings_from_env({}).user_streams
        holder = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--hold",
                base,
                tokens["B"],
                rids["B"],
                str(args.streams),
                str(min(cap, args.streams)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None
            if holder.stdout.readline().strip() != "holding":
                raise SystemExit("B's load process ended before it held its streams")
            loaded_ttfb = first_bytes(base, tokens["A"], rids["A"], args.repeat)
            loaded_check = sample_checks(api, args.checks)
        finally:
            holder.send_signal(signal.SIGTERM)
            out, _ = holder.communicate(timeout=120)
    load = json.loads(out.strip().splitlines()[-1])
    print(
        f"B: {args.streams} clients, {os.cpu_count()} cores, VOICEGATE_USER_STREAMS {cap}:"
        f" {load['opened']} streams opened, at most {load['most_open']} open at once, {load['refused']} refused"
        f" {load['codes']}, {load['completed']} completed, {load['failed']} failed"
    )
    print(f"A: median (ms) of {args.repeat} streams of {SENTENCE!r} and {args.checks} sample checks")
    print(f"{'':34} {'alone':>10} {'B loading':>12} {'ratio':>8} {'max':>10}")
    print(row("A's first byte", alone_ttfb, loaded_ttfb))
    print(row("A's sample check (upload to ready)", alone_check, loaded_check))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=32, help="B's concurrent clients")
    parser.add_argument("--user-streams", type=int, default=None, help="VOICEGATE_USER_STREAMS of the server")
    parser.add_argument("--repeat", type=int, default=5, help="A's streams per measurement")
    parser.add_argument("--checks", type=int, default=3, help="A's sample checks per measurement")
    parser.add_argument(
        "--hold", nargs=5, metavar=("BASE", "TOKEN", "RID", "STREAMS", "READY_AT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.hold:
        base, token, rid, streams, ready_at = args.hold
        load = asyncio.run(hold(base, token, rid, int(streams), int(ready_at)))
        print(json.dumps(load.__dict__), flush=True)
        return

    if args.user_streams is not None:
        os.environ["VOICEGATE_USER_STREAMS"] = str(args.user_streams)
    with running_up(Path(tempfile.mkdtemp(prefix="voicegate-bench-"))) as up:
        tokens = {user: dev_token(up, f"{user.lower()}@example.test") for user in ("A", "B")}
        rids = {}
        for user, token in tokens.items():
            with httpx.Client(base_url=up.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
                rids[user] = local_reflection(api)
        measure(up.base_url, tokens, rids, args)


if __name__ == "__main__":
    main()
