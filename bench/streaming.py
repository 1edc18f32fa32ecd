"""Benchmark: time to first byte (p50/p99) of `POST /v1/reflections/{id}/speech` for 20 concurrent streams, with
the `local` provider and with the ElevenLabs fake answering after 200 ms, beside the fake's own time to first
byte for the same 20 concurrent requests sent to it directly (the floor voicegate cannot go under). The
server lets the bench's one user have twice `--streams` streams open (VOICEGATE_USER_STREAMS).

    python bench/streaming.py [--streams 20] [--rounds 3] [--latency 0.2]

Each round opens `--streams` streams at once of one sentence (PCM); a row gives p50/p99 over every stream of
every round, and the whole stream's p50 beside it. A real `voicegate up` runs the routes (embedded Postgres,
its queue consumers made the local voice and its preview).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.speech import Heard, stream  # noqa: E402 - after the path setup above
from tests.e2e.up import dev_token, running_up, wait_for  # noqa: E402
from tests.fakes import ElevenLabsFake, serve  # noqa: E402
from tests.fakes.elevenlabs import ElevenVoice  # noqa: E402
from tests.fakes.testing import ELEVEN_KEY  # noqa: E402

SENTENCE = "Thanks for calling, how can I help you today?"
SAMPLE = ROOT / "docs" / "quickstart-sample.wav"


def voice_state(api: httpx.Client, rid: str) -> dict[str, Any]:
    state: dict[str, Any] = api.get(f"/v1/reflections/{rid}/voice").raise_for_status().json()
    if state["voice"]["cloneStatus"] == "failed":
        raise SystemExit(f"the clone failed: {state['voice']['lastError']}")
    return state


def local_reflection(api: httpx.Client) -> str:
    """A reflection with a local voice cloned from the quickstart sample, previewed: launch-ready."""
    rid: str = api.post("/v1/reflections", json={"name": "local"}).raise_for_status().json()["id"]
    form = {"consent": "true", "language": "en"}
    files = {"file": ("sample.wav", SAMPLE.read_bytes(), "audio/wav")}
    api.post(f"/v1/reflections/{rid}/voice/clone", data=form, files=files).raise_for_status()
    wait_for(lambda: voice_state(api, rid)["voice"]["previewStatus"] == "ready", 180, "the local preview")
    api.post(f"/v1/reflections/{rid}/voice/preview/complete").raise_for_status()
    return rid


def elevenlabs_reflection(api: httpx.Client) -> str:
    """A reflection with the fake's voice `v1` attached (no preview needed): launch-ready."""
    rid: str = api.post("/v1/reflections", json={"name": "eleven"}).raise_for_status().json()["id"]
    api.patch(f"/v1/reflections/{rid}/voice", json={"provider": "elevenlabs", "voice_id": "v1"}).raise_for_status()
    wait_for(lambda: voice_state(api, rid)["launchReady"], 60, "the ElevenLabs voice")
    return rid


async def rounds(open_one: Callable[[httpx.AsyncClient], Awaitable[Heard]], streams: int, count: int) -> list[Heard]:
    """`count` rounds of `streams` concurrent streams (after one warm-up stream)."""
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    heard: list[Heard] = []
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        await open_one(client)
        for _ in range(count):
            batch = await asyncio.gather(*(open_one(client) for _ in range(streams)))
            failed = [h for h in batch if h.status != 200]
            if failed:
                raise SystemExit(f"{len(failed)} streams failed: {failed[0].status} {failed[0].body[:200]!r}")
            heard.extend(batch)
    return heard


async def fake_directly(url: str, client: httpx.AsyncClient) -> Heard:
    """The fake's own stream for the sentence, as the ElevenLabs adapter asks for it."""
    started = time.monotonic()
    first: float | None = None
    data = b""
    async with client.stream(
        "POST",
        f"{url}/v1/text-to-speech/v1/stream",
        params={"output_format": "pcm_24000"},
        json={"text": SENTENCE, "model_id": "eleven_multilingual_v2"},
        headers={"xi-api-key": ELEVEN_KEY},
    ) as response:
        async for chunk in response.aiter_raw():
            first = first if first is not None else time.monotonic() - started
            data += chunk
    total = time.monotonic() - started
    return Heard(response.status_code, response.headers, data, first or total, total, 0)


def row(name: str, heard: list[Heard]) -> str:
    ttfb = sorted(h.first_byte_s * 1000 for h in heard)
    cuts = statistics.quantiles(ttfb, n=100, method="inclusive")
    whole = statistics.median(h.total_s * 1000 for h in heard)
    audio = statistics.median(len(h.body) / 48 for h in heard)
    return f"{name:44} {len(heard):4d} {cuts[49]:9.0f} {cuts[98]:9.0f} {whole:11.0f} {audio:9.0f}"


async def measure(base: str, token: str, fake_url: str, rids: dict[str, str], *, streams: int, count: int) -> None:
    results: dict[str, list[Heard]] = {}
    results["ElevenLabs fake alone (the floor)"] = await rounds(lambda c: fake_directly(fake_url, c), streams, count)
    for name, rid in rids.items():
        path = f"{base}/v1/reflections/{rid}/speech"
        results[f"voicegate, {name}"] = await rounds(
            lambda c, path=path: stream(c, path, token, {"text": SENTENCE, "format": "pcm_24000"}), streams, count
        )
    print(f"{streams} concurrent streams x {count} rounds of {SENTENCE!r} (PCM 24 kHz)")
    print(f"{'':44} {'n':>4} {'TTFB p50':>9} {'TTFB p99':>9} {'whole p50':>11} {'audio ms':>9}")
    for name, heard in results.items():
        print(row(name, heard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.2, help="the ElevenLabs fake's latency, seconds")
    args = parser.parse_args()

    fake = ElevenLabsFake(ELEVEN_KEY)
    fake.voices["v1"] = ElevenVoice("v1", "Ada", None, {}, [], created_at_unix=int(datetime.now(UTC).timestamp()))
    fake.faults.latency_s = args.latency
    with serve(fake) as fake_url:
        # One user opens every stream: let them have twice as many open as the bench opens at once. A stream's
        # slot is freed as the server records its end, a moment after the client has read its last byte, and
        # the next round starts at once: with exactly as many, a round was refused some (429 streams_limited).
        env = {
            "ELEVENLABS_API_KEY": ELEVEN_KEY,
            "ELEVENLABS_BASE_URL": fake_url,
            "VOICEGATE_USER_STREAMS": str(2 * args.streams),
        }
        os.environ.update(env)
        with running_up(Path(tempfile.mkdtemp(prefix="voicegate-bench-"))) as up:
            token = dev_token(up, "bench@example.test")
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=up.base_url, headers=headers, timeout=60) as api:
                rids = {"local": local_reflection(api), f"ElevenLabs fake at {args.latency * 1000:.0f} ms": ""}
                rids[f"ElevenLabs fake at {args.latency * 1000:.0f} ms"] = elevenlabs_reflection(api)
            asyncio.run(measure(up.base_url, token, fake_url, rids, streams=args.streams, count=args.rounds))


if __name__ == "__main__":
    main()
