"""Benchmark: one user flooding the spoken-consent route with recordings (or the samples route with samples), and
what another user waits meanwhile, on a real `voicegate up` as a user starts it (one process: the API, the
consumers, the `local` engine), with Spanish consents (VOICEGATE_CONSENT_LANGUAGES=en,es: Whisper hears the
readings).

    python bench/reading_flood.py [--clients 1,10] [--accounts 4] [--jobs 5] [--readings 3] [--seconds 16]
                                  [--flood readings|samples] [--checkout PATH]

The flood is `wrk` (its own process): `--clients` connections posting a recording back to back as one user (H),
each to one of H's open consents in turn, never waiting; then `--accounts` users, each from one connection (a
`wrk` each). The recording is FLEURS Spanish speech
(tests/clips/languages/es) joined to `--seconds` (60 at most, the route's limit): each reading costs the API's
CPU executor a few seconds (the phrase, the voiceprint, the watermark); `--language en` makes the consents English,
heard by pocketsphinx, which holds Python's GIL a third of the time, where Whisper (es) computes on a thread of its
own. Measured for another user (O), alone (the
baseline, in the same run) and during each flood:

- O's one-sentence synthesis job in O's `local` voice, from its POST to the `succeeded` its client sees (polling
  every 20 ms), `--jobs` one after another. Target: O's median at most 1.5x alone.
- O's own reading (the same recording, to O's own consent), from its POST to its verdict, the median of
  `--readings`. Readings are long calls, which share their own threads (one in `up` on two cores) round robin by
  user: beside one user's flood, O's reading is due its share of that thread. Target: at most 2x alone. Beside
  several users' readings, O's takes its turn among theirs: printed, no target.

`--flood samples` posts the same recording as a sample instead (`POST /api/v1/voice-samples`, the checkbox consent):
each is checked by the consumer in the same process, a few CPU-seconds in one call (decoding, cleaning, the
voiceprint: about 7 CPU-s for 60 s), a long call as a reading is. The same measures, the same targets. The check
queue's backlog is bounded at `SAMPLE_BACKLOG_S` (VOICEGATE_UPLOAD_BACKLOG_SECONDS; uploads past it are answered 503
`backlog_full`): at the floor of one a second the bound assumes, ten samples wait, enough to keep a check always
running, and few enough to drain in about a minute once the flood stops.

`--checkout PATH` runs `up` from another checkout (an export of an earlier commit: the figures before a change).
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
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.audio.decode import decode_audio  # noqa: E402 - after the path setup above
from bench.api import WRK_COUNTS, cpu_seconds  # noqa: E402
from devkit.audio_corpus import wav_bytes  # noqa: E402
from devkit.up import Running, dev_token, running_up, wait_for  # noqa: E402

WRK = "/usr/bin/wrk"
O_TEXT = "Hello there, this is a short job."
SLOWDOWN_TARGET = 1.5
#: O's reading beside one user's flood: the long calls' thread, shared by two users.
READING_TARGET = 2.0
#: H's open consents the flood reads to in turn (a rejected reading leaves its consent open).
CONSENTS = 10
BOUNDARY = "voicegatebenchboundary"
#: The sample check queue's backlog bound, in seconds of work, for `--flood samples` (see the module docstring).
SAMPLE_BACKLOG_S = "10"

_SCRIPT = """wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=%(boundary)s"
local file = io.open("%(body)s", "rb")
wrk.body = file:read("*a")
file:close()
local paths = {%(paths)s}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {}; n = 0 end
function request()
  n = n + 1
  return wrk.format(nil, paths[(n %% #paths) + 1])
end
function response(status, headers, body)
  local key = tostring(status)
  local verdict = body:match('"status":%%s*"(%%w+)"') or body:match('"code":%%s*"([%%w_]+)"')
  if verdict then key = key .. " " .. verdict end
  counts[key] = (counts[key] or 0) + 1
end
"""


def recording(seconds: float) -> bytes:
    """FLEURS Spanish speech joined (a 0.3 s pause between clips) and cut to `seconds`, as a 16 kHz WAV."""
    pieces = []
    clips = sorted((ROOT / "tests" / "clips" / "languages" / "es").glob("fleurs-es-*.ogg"))
    while sum(len(piece) for piece in pieces) < seconds * 16_000:
        for clip in clips:
            decoded = decode_audio(clip.read_bytes(), max_duration_s=60.0)
            samples = np.asarray(decoded.samples, dtype=np.float32)
            mono = samples.mean(axis=0) if samples.ndim == 2 else samples
            step = decoded.sample_rate / 16_000
            pieces += [mono[(np.arange(int(len(mono) / step)) * step).astype(int)], np.zeros(4_800, np.float32)]
    return wav_bytes(np.concatenate(pieces)[: int(seconds * 16_000)], 16_000)


def multipart(data: bytes, *, sample: bool = False) -> bytes:
    """`data` as the file of a form; a sample's with the checkbox consent before it."""
    fields = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="consent"\r\n\r\ntrue\r\n' if sample else ""
    head = (
        f'{fields}--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="r.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


@dataclass(frozen=True)
class User:
    token: str
    headers: dict[str, str]


def user(up: Running, name: str) -> User:
    token = dev_token(up, f"{name}@example.test")
    return User(token, {"Authorization": f"Bearer {token}"})


def consent(api: httpx.Client, who: User, name: str, language: str) -> str:
    made = api.post("/api/v1/consents", json={"subjectName": name, "language": language}, headers=who.headers)
    return str(made.raise_for_status().json()["consentId"])


def local_voice(api: httpx.Client, who: User) -> str:
    """O's voice, cloned with the `local` provider from the quickstart sample (its first job waited out)."""
    sample_wav = (ROOT / "docs" / "quickstart-sample.wav").read_bytes()
    uploaded = api.post(
        "/api/v1/voice-samples",
        data={"consent": "true"},
        files={"file": ("s.wav", sample_wav, "audio/wav")},
        headers=who.headers,
    )
    sample = uploaded.raise_for_status().json()["sampleId"]
    first = api.post("/api/v1/clone", json={"sampleId": sample, "text": "Hello there."}, headers=who.headers)
    cloned = first.raise_for_status().json()

    def succeeded() -> bool:
        status = api.get(f"/api/v1/clone/{cloned['jobId']}/status", headers=who.headers).json()["status"]
        return bool(status == "succeeded")

    wait_for(succeeded, 300, "O's voice's first job")
    return str(cloned["voiceId"])


async def o_job(client: httpx.AsyncClient, who: User, voice: str) -> float:
    """Seconds from O's POST to the `succeeded` O's client sees."""
    started = time.monotonic()
    asked = await client.post("/api/v1/clone", json={"voiceId": voice, "text": O_TEXT}, headers=who.headers)
    job = asked.raise_for_status().json()["jobId"]
    while time.monotonic() - started < 300:
        status = (await client.get(f"/api/v1/clone/{job}/status", headers=who.headers)).json()["status"]
        if status == "succeeded":
            return time.monotonic() - started
        if status in {"failed", "canceled"}:
            raise RuntimeError(f"O's job ended {status}")
        await asyncio.sleep(0.02)
    raise RuntimeError("O's job did not end within 300 s")


async def o_reading(client: httpx.AsyncClient, who: User, consent_id: str, data: bytes) -> float:
    """Seconds from O's POST of a recording to its verdict."""
    started = time.monotonic()
    answer = await client.post(
        f"/api/v1/consents/{consent_id}/recording", files={"file": ("r.wav", data, "audio/wav")}, headers=who.headers
    )
    if answer.status_code != 200:
        raise RuntimeError(f"O's reading was answered {answer.status_code}: {answer.text[:200]}")
    return time.monotonic() - started


@dataclass(frozen=True)
class Asked:
    """What O asks in each measurement: `jobs` jobs in `voice`, then `readings` readings of `data` to `consent`."""

    voice: str
    consent: str
    data: bytes
    jobs: int
    readings: int


def measure(base: str, who: User, asked: Asked) -> tuple[list[float], float]:
    """O's jobs one after another (after one not counted), then the median of O's readings."""

    async def go() -> tuple[list[float], float]:
        async with httpx.AsyncClient(base_url=base, timeout=300) as client:
            await o_job(client, who, asked.voice)
            timed = [await o_job(client, who, asked.voice) for _ in range(asked.jobs)]
            heard = [await o_reading(client, who, asked.consent, asked.data) for _ in range(asked.readings)]
            return timed, statistics.median(heard)

    return asyncio.run(go())


class Flood:
    """`wrk` posting H's recording (to `consents` in turn; as a sample without them) from `clients` connections
    until `stop`."""

    def __init__(
        self, root: Path, base: str, who: User, *, consents: list[str], body: Path, clients: int, label: str
    ) -> None:
        paths = ", ".join(f'"/api/v1/consents/{one}/recording"' for one in consents) or '"/api/v1/voice-samples"'
        lua = root / f"{label.replace(' ', '_').replace(',', '')}.lua"
        lua.write_text(_SCRIPT % {"token": who.token, "boundary": BOUNDARY, "body": body, "paths": paths} + WRK_COUNTS)
        command = [WRK, "-t1", f"-c{clients}", "-d3600s", "--timeout", "120s", "-s", str(lua), base]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.started = time.monotonic()

    def stop(self) -> tuple[float, dict[str, int]]:
        """How long it ran, and its answers by status and verdict."""
        self.process.send_signal(2)  # wrk prints its summary on SIGINT
        out, _ = self.process.communicate(timeout=180)
        seconds = time.monotonic() - self.started
        line = next((line for line in out.splitlines() if line.startswith("COUNTS ")), "COUNTS {}")
        return seconds, json.loads(line.removeprefix("COUNTS "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,10", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--accounts", type=int, default=4, help="users reading one at a time each (0: none)")
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--readings", type=int, default=3)
    parser.add_argument("--language", default="es", choices=["es", "en"], help="the consents' (en: pocketsphinx)")
    parser.add_argument("--seconds", type=float, default=16.0, help="the recording's length (60 at most)")
    parser.add_argument("--flood", default="readings", choices=["readings", "samples"], help="what H posts")
    parser.add_argument("--warm", type=float, default=5.0, help="seconds the flood runs before O is timed")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="run up from this checkout")
    args = parser.parse_args()
    if not Path(WRK).exists():
        sys.exit("wrk is missing: run `bash .ci/ensure-packages` (it installs Debian's wrk)")
    root = Path(tempfile.mkdtemp(prefix="voicegate-bench-readings-"))
    data = recording(min(args.seconds, 60.0))
    body = root / "body"
    samples = args.flood == "samples"
    body.write_bytes(multipart(data, sample=samples))
    print(
        f"voicegate up from {args.checkout} ({commit_of(args.checkout)}); {os.cpu_count()} cores; load average"
        f" {os.getloadavg()[0]:.1f}; {args.flood} of {args.seconds:g} s ({len(data)} bytes);"
        f" consents in {args.language}"
    )
    settings = {"VOICEGATE_CONSENT_LANGUAGES": "en,es"} | (
        {"VOICEGATE_UPLOAD_BACKLOG_SECONDS": SAMPLE_BACKLOG_S} if samples else {}
    )
    with running_up(root, settings=settings, ready_s=240, cwd=args.checkout) as up:
        o = user(up, f"o-{uuid.uuid4().hex[:6]}")
        hostile = [user(up, f"h{n}-{uuid.uuid4().hex[:6]}") for n in range(max(1, args.accounts))]
        with httpx.Client(base_url=up.base_url, timeout=120) as api:
            asked = Asked(
                local_voice(api, o), consent(api, o, "Ana Lopez", args.language), data, args.jobs, args.readings
            )
            opened = {
                h.token: [] if samples else [consent(api, h, f"Juan Perez {n}", args.language) for n in range(CONSENTS)]
                for h in hostile
            }
        jobs, reading = measure(up.base_url, o, asked)
        base_job = statistics.median(jobs)
        print(f"\nO's job ({O_TEXT!r}), {args.jobs} one after another, POST to `succeeded`;", end=" ")
        print(f"O's reading, POST to verdict (median of {args.readings})")
        print(f"{'':26}{'job p50':>10}{'x':>7}{'job max':>10}{'reading':>10}{'x':>7}   the flood's answers")
        print(f"{'alone (baseline)':26}{base_job:>10.2f}{1:>7.2f}{max(jobs):>10.2f}{reading:>10.2f}{1:>7.2f}")
        phases = [(f"H floods, {n} at once", [(hostile[0], n)]) for n in args.clients]
        if args.accounts:
            phases.append((f"{args.accounts} users, 1 each", [(h, 1) for h in hostile]))
        verdicts = []
        for label, who in phases:
            floods = [
                Flood(root, up.base_url, h, consents=opened[h.token], body=body, clients=n, label=f"{label}-{k}")
                for k, (h, n) in enumerate(who)
            ]
            try:
                time.sleep(args.warm)
                loaded, loaded_reading = measure(up.base_url, o, asked)
            finally:  # no wrk left flooding after a failed measure
                stopped = [flood.stop() for flood in floods]
            answers = summed([counts for _, counts in stopped])
            median = statistics.median(loaded)
            job_x, reading_x = median / base_job, loaded_reading / reading
            print(
                f"{label:26}{median:>10.2f}{job_x:>7.2f}{max(loaded):>10.2f}"
                f"{loaded_reading:>10.2f}{reading_x:>7.2f}   {answers} in {max(t for t, _ in stopped):.0f} s"
            )
            verdicts += judged(label, job_x, reading_x if len(who) == 1 else None)
            wait_for(lambda: idle(up), 300, f"the flood's {args.flood} to end")
    for verdict in verdicts:
        print(verdict)


def judged(label: str, job_x: float, reading_x: float | None) -> list[str]:
    """O's job, and O's reading where it has a target (beside one user's flood), against the targets."""
    ratios = [("job", job_x, SLOWDOWN_TARGET)] + ([] if reading_x is None else [("reading", reading_x, READING_TARGET)])
    return [
        f"{label}: O's {what} {ratio:.2f}x alone, {'meets' if ratio <= target else 'MISSES'} (≤ {target}x)"
        for what, ratio, target in ratios
    ]


def summed(counts: list[dict[str, int]]) -> dict[str, int]:
    """The floods' answers, added up by status and verdict."""
    total: dict[str, int] = {}
    for one in counts:
        for key, n in one.items():
            total[key] = total.get(key, 0) + n
    return total


def commit_of(checkout: Path) -> str:
    """The commit `checkout` is at: git's, or its COMMIT file's (an export)."""
    return (
        subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        or (checkout / "COMMIT").read_text().strip()
    )


def idle(up: Running) -> bool:
    """Whether `up` has stopped working (under 5 % of a core for a second)."""
    before = cpu_seconds(up.process.pid)
    time.sleep(1.0)
    return cpu_seconds(up.process.pid) - before < 0.05


if __name__ == "__main__":
    main()
