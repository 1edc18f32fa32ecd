"""Benchmark: time to first byte (p50/p99) of `POST /v1/reflections/{id}/speech` for 20 concurrent streams, with
the `local` provider, with the ElevenLabs fake answering after 200 ms, and with `selfhosted` on the vLLM-Omni
fake making 0.1 s of audio every 40 ms, each fake beside its own time to first byte for the same 20 concurrent
requests sent to it directly (the floor voicegate cannot go under; vLLM-Omni's asked for raw bytes as they are
made, `stream_format: "audio"`). The server lets the bench's one user have twice `--streams` streams open
(VOICEGATE_USER_STREAMS).

    python bench/streaming.py [--streams 20] [--rounds 3] [--latency 0.2] [--render 0.04]

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

from devkit.streaming import Heard, stream  # noqa: E402 - after the path setup above
from devkit.up import dev_token, running_up, wait_for  # noqa: E402
from fakes import ElevenLabsFake, SelfhostedFake, serve  # noqa: E402
from fakes.audio import tone_wav  # noqa: E402
from fakes.elevenlabs import ElevenVoice  # noqa: E402
from fakes.selfhosted import MODEL as SELFHOSTED_MODEL  # noqa: E402
from fakes.selfhosted import SelfhostedVoice  # noqa: E402

#: The key the ElevenLabs fake is given, and voicegate with it.
ELEVEN_KEY = "sk_bench_eleven_0123456789"
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


def attached_reflection(api: httpx.Client, provider: str) -> str:
    """A reflection with the provider's fake voice `v1` attached (no preview needed): launch-ready."""
    rid: str = api.post("/v1/reflections", json={"name": provider}).raise_for_status().json()["id"]
    api.patch(f"/v1/reflections/{rid}/voice", json={"provider": provider, "voice_id": "v1"}).raise_for_status()
    wait_for(lambda: voice_state(api, rid)["launchReady"], 60, f"the {provider} voice")
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


def eleven_directly(url: str) -> Callable[[httpx.AsyncClient], Awaitable[Heard]]:
    """The ElevenLabs fake's own stream for the sentence, as the ElevenLabs adapter asks for it."""
    body = {"text": SENTENCE, "model_id": "eleven_multilingual_v2"}
    return lambda client: fake_directly(
        client,
        f"{url}/v1/text-to-speech/v1/stream",
        body,
        params={"output_format": "pcm_24000"},
        headers={"xi-api-key": ELEVEN_KEY},
    )


def vllm_omni_directly(url: str) -> Callable[[httpx.AsyncClient], Awaitable[Heard]]:
    """The vLLM-Omni fake's own stream for the sentence, raw PCM as it is made."""
    body = {"input": SENTENCE, "voice": "v1", "model": SELFHOSTED_MODEL, "response_format": "pcm"}
    return lambda client: fake_directly(client, f"{url}/v1/audio/speech", {**body, "stream_format": "audio"})


async def fake_directly(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Heard:
    """One streamed request straight to a fake, timed as `stream` times voicegate's."""
    started = time.monotonic()
    first: float | None = None
    data = b""
    async with client.stream("POST", url, params=params, json=body, headers=headers) as response:
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


Floor = Callable[[httpx.AsyncClient], Awaitable[Heard]]


async def measure(
    base: str, token: str, rids: dict[str, tuple[str, Floor | None]], *, streams: int, count: int
) -> None:
    """Each provider's rows: its fake alone (when it has one), then voicegate streaming from it."""
    results: dict[str, list[Heard]] = {}
    for name, (rid, floor) in rids.items():
        if floor is not None:
            results[f"{name.split(' fake')[0]} fake alone (the floor)"] = await rounds(floor, streams, count)
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
    # Qwen3-TTS streams at a real-time factor under 0.5 on one recent GPU (first chunk in 0.17 s): 0.4 here.
    parser.add_argument("--render", type=float, default=0.04, help="the vLLM-Omni fake's seconds per 0.1 s of audio")
    args = parser.parse_args()

    eleven = ElevenLabsFake(ELEVEN_KEY)
    eleven.voices["v1"] = ElevenVoice("v1", "Ada", None, {}, [], created_at_unix=int(datetime.now(UTC).timestamp()))
    eleven.faults.latency_s = args.latency
    vllm_omni = SelfhostedFake("registry")
    vllm_omni.voices["v1"] = SelfhostedVoice("v1", "consent", tone_wav(5.0, 24000), "audio/wav", "Hello there.")
    vllm_omni.stream_interval_s = args.render
    with serve(eleven) as eleven_url, serve(vllm_omni) as vllm_omni_url:
        # One user opens every stream: let them have twice as many open as the bench opens at once. A stream's
        # slot is freed as the server records its end, a moment after the client has read its last byte, and
        # the next round starts at once: with exactly as many, a round was refused some (429 streams_limited).
        env = {
            "ELEVENLABS_API_KEY": ELEVEN_KEY,
            "ELEVENLABS_BASE_URL": eleven_url,
            "SELFHOSTED_BASE_URL": vllm_omni_url,
            "SELFHOSTED_MODEL": SELFHOSTED_MODEL,
            "VOICEGATE_USER_STREAMS": str(2 * args.streams),
        }
        os.environ.update(env)
        with running_up(Path(tempfile.mkdtemp(prefix="voicegate-bench-"))) as up:
            token = dev_token(up, "bench@example.test")
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=up.base_url, headers=headers, timeout=60) as api:
                rids: dict[str, tuple[str, Floor | None]] = {
                    "local": (local_reflection(api), None),
                    f"ElevenLabs fake at {args.latency * 1000:.0f} ms": (
                        attached_reflection(api, "elevenlabs"),
                        eleven_directly(eleven_url),
                    ),
                    f"vLLM-Omni fake at {args.render * 1000:.0f} ms per 0.1 s": (
                        attached_reflection(api, "selfhosted"),
                        vllm_omni_directly(vllm_omni_url),
                    ),
                }
            asyncio.run(measure(up.base_url, token, rids, streams=args.streams, count=args.rounds))


if __name__ == "__main__":
    main()
