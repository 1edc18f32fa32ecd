"""Benchmark: requests/s and p50/p99 latency of `POST /api/clone/upload-url` and `GET
/v1/reflections/{id}/voice` under concurrent load, beside `GET /readyz` (a bare route doing one
`select 1` through the same pool), all against one `voicegate serve` process in the same run.

    python bench/api.py [--seconds 5] [--concurrency 32]

Target (issue 3): the real routes reach at least half the bare route's throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.db.migrate import migrate  # noqa: E402 - after the path setup above
from backend.embedded.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres, free_port  # noqa: E402


async def load(
    client: httpx.AsyncClient, send: Callable[[httpx.AsyncClient], object], seconds: float, concurrency: int
) -> tuple[float, float, float, int]:
    """Run `send` from `concurrency` loops for `seconds`; return (req/s, p50 ms, p99 ms, errors)."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await send(client)  # type: ignore[misc]
            latencies.append(time.perf_counter() - started)
            if response.status_code >= 400:
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, cuts[49] * 1000, cuts[98] * 1000, errors


async def run(base: str, token: str, seconds: float, concurrency: int) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        reflection = (await client.post("/v1/reflections", json={"name": "bench"}, headers=auth)).json()["id"]
        targets: dict[str, Callable[[httpx.AsyncClient], object]] = {
            "GET /readyz (bare select 1, baseline)": lambda c: c.get("/readyz"),
            "GET /v1/reflections/{id}/voice": lambda c: c.get(f"/v1/reflections/{reflection}/voice", headers=auth),
            "POST /api/clone/upload-url": lambda c: c.post(
                "/api/clone/upload-url", json={"name": "bench", "consent": True}, headers=auth
            ),
        }
        for send in targets.values():  # warm the pool and the code paths
            await load(client, send, 1.0, concurrency)
        results = {name: await load(client, send, seconds, concurrency) for name, send in targets.items()}
    baseline = next(iter(results.values()))[0]
    print(f"{seconds:.0f} s per route, {concurrency} concurrent clients, one server process, pool of 20")
    print(f"{'route':42} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs bare':>8}")
    for name, (rps, p50, p99, errors) in results.items():
        print(f"{name:42} {rps:8.0f} {p50:8.1f} {p99:8.1f} {errors:7d} {rps / baseline:8.2f}")
    worst = min(rps for rps, *_ in list(results.values())[1:]) / baseline
    print(f"target: real routes >= 0.50 x bare route: {'meets' if worst >= 0.5 else 'MISSES'} (worst {worst:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="voicegate-bench-"))
    pg = EmbeddedPostgres(root / "pgdata", port=free_port(), settings=FAST_UNSAFE_SETTINGS)
    server = None
    try:
        pg.ensure_running()
        migrate(pg.dsn)
        port = free_port()
        env = {
            **os.environ,
            "VOICEGATE_DATA_DIR": str(root),
            "VOICEGATE_PG_PORT": str(pg.port),
            "VOICEGATE_PORT": str(port),
            "VOICEGATE_LOG_LEVEL": "WARNING",
        }
        env.pop("DATABASE_URL", None)
        token = subprocess.run(
            [sys.executable, "-m", "backend.cli", "token", "--user", "bench@example.test"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
        ).stdout.strip()
        server = subprocess.Popen([sys.executable, "-m", "backend.cli", "serve"], env=env, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        asyncio.run(run(base, token, args.seconds, args.concurrency))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        pg.remove()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
