"""Benchmark: time to first byte (p50/p99) of `POST /v1/reflections/{id}/speech`, one stream at a time and 20 at once,
with the `local` provider, with the ElevenLabs fake answering after 200 ms, and with `selfhosted` on the vLLM-Omni
fake making 0.1 s of audio every 40 ms, each fake beside its own time to first byte for the same requests sent to it
directly (the floor voicegate cannot go under; vLLM-Omni's asked for raw bytes as they are made, `stream_format:
"audio"`): what voicegate adds is the difference, printed beside its target; and beside them a bare Litestar proxy
of each fake (`bench/bare.py`: one route relaying the fake's stream through an httpx client, no database, no mark,
served by uvicorn in one process as voicegate is), what any Python server adds on these cores; and the same proxy
asking the database first, as the caller and in one round trip, whether the reflection is theirs (`bench/bare.py`'s
`as-caller` route: the least a server whose boundary is RLS does before it speaks). The fakes run in a
process of their own (`bench/stream_fakes.py`), so that they and the client that times them do not take turns for
one interpreter lock. Then the mark: streams of 2 s or more as MP3 (64 kbit/s), from `local` and from the ElevenLabs
fake speaking espeak-ng's speech, each sent to `POST /api/v1/provenance/check`, beside the same fake's audio marked
whole as a render is. The server lets the bench's one user have twice `--streams` streams open
(VOICEGATE_USER_STREAMS).

    python bench/streaming.py [--streams 20] [--rounds 3] [--single 20] [--marks 10] [--latency 0.2]
                              [--render 0.04] [--only local|elevenlabs|vllm-omni ...]

One at a time is `--single` streams one after another; at once, each round opens `--streams` streams together.
`--only` measures the voices named (each once), `--single 0` or `--rounds 0` leaves their rows out and
`--marks 0` the mark: a run of one round alone, for a profiler on the server. VOICEGATE_API_PROCESSES=2 in the
bench's environment measures `up` serving from two processes.
All of one sentence (PCM); a row gives p50/p99 over every stream, and the whole stream's p50 beside it, with the
server process's CPU per stream (`server ms`, from /proc: its event loop, CPU executor and consumers) and its
event loop's thread's part of it (`loop ms`). A real
`voicegate up` runs the routes (embedded Postgres, its queue consumers made the local voice and its preview).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.audio.formats import StreamEncoder  # noqa: E402 - after the path setup above
from backend.watermark import mark  # noqa: E402
from bench.api import subject  # noqa: E402
from bench.stream_fakes import ELEVEN_KEY, espeak_pcm  # noqa: E402
from devkit.speech_maker import SENTENCES as MARK_TEXTS  # noqa: E402
from devkit.streaming import Heard, stream  # noqa: E402
from devkit.up import api_children, dev_token, running_up, wait_for  # noqa: E402
from fakes.selfhosted import MODEL as SELFHOSTED_MODEL  # noqa: E402
from standins.postgres import free_port  # noqa: E402

SENTENCE = "Thanks for calling, how can I help you today?"
SAMPLE = ROOT / "docs" / "quickstart-sample.wav"
#: The targets: what voicegate adds to a fake's first byte, p50 one at a time (ms); at once, p50, as a multiple of
#: what the bare proxy adds in the same run (at least 1 ms of it: the proxy can add nothing measurable); its event
#: loop's CPU per stream at once (ms); and `local`'s first byte at once, p50 (ms).
ADDED_ALONE_P50 = 10.0
ADDED_AT_ONCE_OVER_BARE = 2.0
LOOP_MS_AT_ONCE = 15.0
LOCAL_AT_ONCE_P50 = 300.0
MP3_BYTES_PER_S = 64000 // 8
#: The voices `--only` names, in the order `served` makes them.
VOICES = ("local", "elevenlabs", "vllm-omni")


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
    wait_for(lambda: voice_state(api, rid)["voice"]["previewStatus"] == "ready", 600, "the local preview")
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
    """One streamed request straight to a fake (or through the bare proxy), timed as `stream` times voicegate's;
    anything but a 200 ends the bench, as it would measure the wrong thing."""
    started = time.monotonic()
    first: float | None = None
    data = b""
    async with client.stream("POST", url, params=params, json=body, headers=headers) as response:
        async for chunk in response.aiter_raw():
            first = first if first is not None else time.monotonic() - started
            data += chunk
    total = time.monotonic() - started
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {data[:200]!r}")
    return Heard(response.status_code, response.headers, data, first or total, total, 0)


def cpu_seconds(pid: int) -> float:
    """The CPU seconds (user and system) process `pid` has used so far, with its other API processes'
    (VOICEGATE_API_PROCESSES: the `voicegate serve` processes it started)."""
    return sum(_own_cpu_seconds(each) for each in (pid, *api_children(pid)))


def loop_seconds(pid: int) -> float:
    """The CPU seconds the event loops of process `pid` and its other API processes have used so far: each
    process's main thread, which runs its loop (its CPU executor and consumers' threads are left out)."""
    return sum(_own_cpu_seconds(each, thread=each) for each in (pid, *api_children(pid)))


def _own_cpu_seconds(pid: int, *, thread: int | None = None) -> float:
    stat = Path(f"/proc/{pid}/stat") if thread is None else Path(f"/proc/{pid}/task/{thread}/stat")
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # an API process that has ended since it was listed
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Cost:
    """What a row's streams cost beside their time: the share of one core this process (the client; the fakes
    run in a process of their own) used meanwhile, what the bench takes from the cores the server shares with it; and
    the server's CPU per stream (ms; the whole process: its event loop, its CPU executor, its queue
    consumers), 0 for the fakes' rows; and the part of it its event loop used (`loop_ms`)."""

    client: float
    server_ms: float
    loop_ms: float = 0.0


async def costed(run: Awaitable[list[Heard]], server: int | None) -> tuple[list[Heard], Cost]:
    """`run`'s streams and what they cost (`Cost`); `server` is the server's pid, None for a fake's rows."""
    cpu, wall = time.process_time(), time.monotonic()
    served = cpu_seconds(server) if server is not None else 0.0
    looped = loop_seconds(server) if server is not None else 0.0
    heard = await run
    client = (time.process_time() - cpu) / (time.monotonic() - wall)
    if server is None:
        return heard, Cost(client, 0.0)
    # The warm-up stream `rounds` opens first is counted with the rest.
    streams = len(heard) + 1
    per_stream = (cpu_seconds(server) - served) / streams * 1000
    return heard, Cost(client, per_stream, (loop_seconds(server) - looped) / streams * 1000)


def cuts(heard: list[Heard]) -> tuple[float, float]:
    """The first byte's p50 and p99, ms."""
    ttfb = sorted(h.first_byte_s * 1000 for h in heard)
    if len(ttfb) == 1:
        return ttfb[0], ttfb[0]
    quantiles = statistics.quantiles(ttfb, n=100, method="inclusive")
    return quantiles[49], quantiles[98]


def row(name: str, heard: list[Heard], cost: Cost) -> str:
    p50, p99 = cuts(heard)
    whole = statistics.median(h.total_s * 1000 for h in heard)
    audio = statistics.median(len(h.body) / 48 for h in heard)
    server = f"{cost.server_ms:10.1f} {cost.loop_ms:8.1f}" if cost.server_ms else ""
    return f"{name:52} {len(heard):4d} {p50:9.0f} {p99:9.0f} {whole:11.0f} {audio:9.0f} {cost.client:7.0%} {server}"


def verdict(what: str, value: float, target: float, *, added: bool = True) -> str:
    """A figure beside its target; ``added`` (what voicegate adds to a fake's first byte) prints its sign."""
    shown = f"{value:+7.0f}" if added else f"{value:7.0f}"
    return f"  {what:66} {shown} ms  (target <= {target:.0f}: {'met' if value <= target else 'NOT MET'})"


Floor = Callable[[httpx.AsyncClient], Awaitable[Heard]]


async def measure(
    up: Served, rids: dict[str, tuple[str, Floor | None]], *, streams: int, count: int, single: int
) -> None:
    """Each provider's rows, one at a time then `streams` at once: its fake alone (when it has one), then
    voicegate streaming from it; what voicegate adds beside the targets."""
    base, token = up.base_url, up.token
    results: dict[str, tuple[list[Heard], Cost]] = {}
    targets: list[str] = []
    floors: list[str] = []
    for name, (rid, floor) in rids.items():
        path = f"{base}/v1/reflections/{rid}/speech"
        through = lambda c, path=path: stream(c, path, token, {"text": SENTENCE, "format": "pcm_24000"})  # noqa: E731
        for at_once, times in ((1, single), (streams, count)):
            if not times:
                continue
            how = "one at a time" if at_once == 1 else f"{at_once} at once"
            if floor is not None:
                fake = f"{name.split(' fake')[0]} fake alone, {how}"
                results[fake] = await costed(rounds(floor, at_once, times), None)
                alone = results[fake][0]
                bare = f"bare Litestar proxy of the {name.split(' fake')[0]} fake, {how}"
                results[bare] = await costed(rounds(up.bare[name], at_once, times), None)
                asking = f"bare proxy of the {name.split(' fake')[0]} fake, asking first, {how}"
                results[asking] = await costed(rounds(up.asking[name], at_once, times), None)
                for what, key in (("a bare proxy", bare), ("asking the database first", asking)):
                    floors.append(
                        f"  {name}, {how}: {what} adds "
                        + " / ".join(f"{b - a:+.0f}" for b, a in zip(cuts(results[key][0]), cuts(alone), strict=True))
                        + " ms (p50 / p99)"
                    )
            results[f"voicegate, {name}, {how}"] = await costed(rounds(through, at_once, times), up.pid)
            voicegate, cost = results[f"voicegate, {name}, {how}"]
            if at_once > 1:
                targets.append(
                    verdict(f"{name}, {how}: loop ms per stream", cost.loop_ms, LOOP_MS_AT_ONCE, added=False)
                )
            if floor is None:  # `local`: no provider's first byte to take from its own
                if at_once > 1:
                    first = cuts(voicegate)[0]
                    targets.append(verdict(f"{name}, {how}: first byte p50", first, LOCAL_AT_ONCE_P50, added=False))
                continue
            added = cuts(voicegate)[0] - cuts(alone)[0]
            if at_once == 1:
                targets.append(verdict(f"{name}, {how}: added p50", added, ADDED_ALONE_P50))
                continue
            bare_added = max(cuts(results[bare][0])[0] - cuts(alone)[0], 1.0)
            asking_added = max(cuts(results[asking][0])[0] - cuts(alone)[0], 1.0)
            what = (
                f"{name}, {how}: added p50 ({added / bare_added:.1f}x bare's +{bare_added:.0f};"
                f" {added / asking_added:.1f}x asking's +{asking_added:.0f})"
            )
            targets.append(verdict(what, added, ADDED_AT_ONCE_OVER_BARE * bare_added))
    print(f"one at a time x {single}, {streams} at once x {count} rounds, of {SENTENCE!r} (PCM 24 kHz), ms")
    columns = (
        ("TTFB p50", 9),
        ("TTFB p99", 9),
        ("whole p50", 11),
        ("audio ms", 9),
        ("client", 7),
        ("server ms", 10),
        ("loop ms", 8),
    )
    print(f"{'':52} {'n':>4} " + " ".join(f"{title:>{width}}" for title, width in columns))
    for name, (heard, cost) in results.items():
        print(row(name, heard, cost))
    print("client: the share of a core the bench's client used meanwhile (the fakes run in a process of their own)")
    print("server ms: the server process's CPU per stream (its event loop, CPU executor and consumers), ms")
    print("loop ms: the part of it its event loop's thread used (the opening, the relay, the consumers' polls), ms")
    print("what voicegate adds to the fake's first byte (p50 less p50), its loop's CPU, and local's first byte:")
    print("\n".join(target for target in targets if not target.lstrip().startswith("local")))
    print("\n".join(target for target in targets if target.lstrip().startswith("local")))
    print(
        "the floor of any Python server here: bench/bare.py's Litestar route relaying the fake (no database, no mark),"
        " and the same route once one round trip to the database, as the caller, has said the reflection is theirs:"
    )
    print("\n".join(floors))


async def marks(base: str, token: str, rids: dict[str, str], count: int) -> None:
    """`count` streams of 2 s or more from each voice as MP3 (64 kbit/s) through `POST /api/v1/provenance/check`,
    beside the ElevenLabs fake's same audio marked whole (as a render is) and encoded as a stream's MP3 is."""
    found: dict[str, list[tuple[bool, float]]] = {}
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:

        async def checked(data: bytes) -> tuple[bool, float]:
            if len(data) < 2 * MP3_BYTES_PER_S:
                raise SystemExit(f"a stream of under 2 s: {len(data)} bytes")
            answer = await client.post("/api/v1/provenance/check", files={"file": ("stream.mp3", data)})
            watermark = answer.raise_for_status().json()["watermark"]
            return bool(watermark["present"]), float(watermark["score"])

        for name, rid in rids.items():
            for index in range(count):
                body = {"text": MARK_TEXTS[index % len(MARK_TEXTS)], "format": "mp3"}
                heard = await stream(client, f"/v1/reflections/{rid}/speech", token, body)
                if heard.status != 200:
                    raise SystemExit(f"a stream failed: {heard.status} {heard.body[:200]!r}")
                found.setdefault(f"voicegate, {name}", []).append(await checked(heard.body))
        for index in range(count):
            seconds = min(0.05 * len(MARK_TEXTS[index % len(MARK_TEXTS)]), 5.0)
            marked = mark(np.frombuffer(espeak_pcm(seconds, 24000), dtype="<i2") / 32768.0, 24000)
            encoder = StreamEncoder("mp3")
            mp3 = encoder.feed(np.clip(np.round(marked * 32768), -32768, 32767).astype("<i2").tobytes())
            found.setdefault("its audio marked whole (as a render is), MP3 64k", []).append(
                await checked(mp3 + encoder.finish())
            )
    print("the mark in streams of 2 s or more as MP3 64k, by POST /api/v1/provenance/check:")
    print(f"{'':52} {'found':>7} {'score min':>10} {'median':>7}")
    for name, answers in found.items():
        scores = [score for _, score in answers]
        hits = sum(present for present, _ in answers)
        print(f"{name:52} {hits:3d}/{len(answers):<3d} {min(scores):10.3f} {statistics.median(scores):7.3f}")


@dataclass
class Served:
    """A running `voicegate up` with the fakes, a user's token, and a launch-ready reflection of each voice:
    its name, id and the fake's own stream (the floor; None for `local`)."""

    base_url: str
    token: str
    reflections: dict[str, tuple[str, Floor | None]]
    #: Has the ElevenLabs fake speak espeak-ng's speech from then on.
    speak_espeak: Callable[[], None]
    #: The server's process id (`voicegate up`, whose one process serves the API).
    pid: int
    #: The bare Litestar proxy's stream from each fake (`bench/bare.py`'s `/speech/...`), by the voice's name.
    bare: dict[str, Floor]
    #: The same, asking the database as the caller first (`/speech/.../as-caller/{id}`), by the voice's name.
    asking: dict[str, Floor]


@contextmanager
def provider_fakes(*, latency: float, render: float) -> Iterator[tuple[dict[str, str], Callable[[], None]]]:
    """`bench/stream_fakes.py` in a process of its own: the fakes' URLs by name, and what has the ElevenLabs fake
    speak espeak-ng's speech from then on."""
    command = [sys.executable, str(ROOT / "bench" / "stream_fakes.py"), f"--latency={latency}", f"--render={render}"]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        fakes_in, fakes_out = process.stdin, process.stdout

        def speak_espeak() -> None:
            fakes_in.write("espeak\n")
            fakes_in.flush()
            if fakes_out.readline().strip() != "ok":
                raise SystemExit("the fakes' process did not take up espeak-ng's speech")

        try:
            line = fakes_out.readline()
            if not line:
                raise SystemExit("the fakes' process ended before serving")
            yield json.loads(line), speak_espeak
        finally:
            fakes_in.close()
            process.wait(timeout=30)


@contextmanager
def served(*, streams: int, latency: float, render: float) -> Iterator[Served]:
    """`voicegate up` beside the ElevenLabs fake answering after `latency` and the vLLM-Omni fake making 0.1 s of
    audio every `render` seconds (`provider_fakes`), its one user allowed twice `streams` streams open."""
    with provider_fakes(latency=latency, render=render) as (urls, speak_espeak):
        eleven_url, vllm_omni_url = urls["elevenlabs"], urls["vllm-omni"]
        # One user opens every stream: let them have twice as many open as the bench opens at once. A stream's
        # slot is freed as the server records its end, a moment after the client has read its last byte, and
        # the next round starts at once: with exactly as many, a round was refused some (429 streams_limited).
        env = {
            "ELEVENLABS_API_KEY": ELEVEN_KEY,
            "ELEVENLABS_BASE_URL": eleven_url,
            "SELFHOSTED_BASE_URL": vllm_omni_url,
            "SELFHOSTED_MODEL": SELFHOSTED_MODEL,
            "VOICEGATE_USER_STREAMS": str(2 * streams),
        }
        os.environ.update(env)
        # A bench runs beside other work: on a loaded machine `up` takes minutes to be ready.
        with running_up(Path(tempfile.mkdtemp(prefix="voicegate-bench-")), ready_s=600) as up:
            token = dev_token(up, "bench@example.test")
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=up.base_url, headers=headers, timeout=60) as api:
                reflections: dict[str, tuple[str, Floor | None]] = {
                    "local": (local_reflection(api), None),
                    f"ElevenLabs fake at {latency * 1000:.0f} ms": (
                        attached_reflection(api, "elevenlabs"),
                        eleven_directly(eleven_url),
                    ),
                    f"vLLM-Omni fake at {render * 1000:.0f} ms per 0.1 s": (
                        attached_reflection(api, "selfhosted"),
                        vllm_omni_directly(vllm_omni_url),
                    ),
                }
            try:
                print(f"voicegate up: pid {up.process.pid}", flush=True)
                with bare_proxy(up.pg.dsn, eleven_url, vllm_omni_url, subject(token)) as bare:
                    eleven_name, vllm_name = (name for name in reflections if name != "local")
                    proxied: dict[str, Floor] = {}
                    asking: dict[str, Floor] = {}
                    for name, provider in ((eleven_name, "elevenlabs"), (vllm_name, "vllm-omni")):
                        path = f"{bare}/speech/{provider}"
                        proxied[name] = lambda c, path=path: fake_directly(c, path, {"text": SENTENCE})
                        path = f"{path}/as-caller/{reflections[name][0]}"
                        asking[name] = lambda c, path=path: fake_directly(c, path, {"text": SENTENCE})
                    yield Served(up.base_url, token, reflections, speak_espeak, up.process.pid, proxied, asking)
            except BaseException:
                # The server's data, its log with it, is removed as it stops: say what it logged first.
                print(up.log.read_text(errors="replace")[-4000:], file=sys.stderr)
                raise


@contextmanager
def bare_proxy(dsn: str, eleven_url: str, vllm_omni_url: str, user: str) -> Iterator[str]:
    """`bench/bare.py` served by uvicorn as voicegate is (one process), relaying the fakes' streams: the floor any
    Python server on these cores meets (a Litestar route, an httpx request, the bytes passed on); asking the
    database as `user` first on its `as-caller` routes."""
    port = free_port()
    env = {
        **os.environ,
        "BARE_DSN": dsn,
        "BARE_USER": user,
        "BARE_ELEVENLABS_URL": eleven_url,
        "BARE_ELEVENLABS_KEY": ELEVEN_KEY,
        "BARE_SELFHOSTED_URL": vllm_omni_url,
        "BARE_SELFHOSTED_MODEL": SELFHOSTED_MODEL,
    }
    command = [sys.executable, "-m", "uvicorn", "bench.bare:app", "--port", str(port), "--log-level", "warning"]
    with subprocess.Popen(command, env=env, cwd=ROOT) as process:
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: _answers(f"{url}/hello"), 60, "the bare proxy", process)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """The options this bench shares with bench/pipecat_streaming.py."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--single", type=int, default=20, help="streams one at a time")
    parser.add_argument("--latency", type=float, default=0.2, help="the ElevenLabs fake's latency, seconds")
    # Qwen3-TTS streams at a real-time factor under 0.5 on one recent GPU (first chunk in 0.17 s): 0.4 here.
    parser.add_argument("--render", type=float, default=0.04, help="the vLLM-Omni fake's seconds per 0.1 s of audio")
    return parser


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--marks", type=int, default=10, help="streams checked for the mark, from each voice")
    parser.add_argument("--only", action="append", choices=VOICES, help="measure only this voice (repeatable)")
    args = parser.parse_args()
    with served(streams=args.streams, latency=args.latency, render=args.render) as up:
        chosen = {
            name: voice
            for (name, voice), key in zip(up.reflections.items(), VOICES, strict=True)
            if args.only is None or key in args.only
        }
        asyncio.run(measure(up, chosen, streams=args.streams, count=args.rounds, single=args.single))
        if not args.marks:
            return
        # The fake speaks espeak-ng's speech now: the tone the fakes make otherwise carries no mark.
        up.speak_espeak()
        local, eleven = (rid for name, (rid, _) in up.reflections.items() if "vLLM" not in name)
        speaking = {"local": local, "ElevenLabs fake (espeak-ng speech)": eleven}
        asyncio.run(marks(up.base_url, up.token, speaking, args.marks))


if __name__ == "__main__":
    main()
