"""The chaos run: PRD flows from several users against a real `voicegate up` while the stack is
killed under them, then the database's account of what came of it.

    .venv/bin/python bench/chaos.py [--users 10] [--flows-per-user 5] [--speech DIR] [--seed 45] [--keep]
                                    [--no-faults]

A few minutes on two cores. `voicegate up` runs on a fresh data directory as a user starts it (embedded
Postgres, the queue consumers in-process, the `local` provider), on free ports. Each user (a token from
`voicegate token --user`) runs its flows at once, the k-th started about 2k seconds after its first, all
users together; a flow is the README's: `POST /api/v1/voice-samples` (multipart `file` + `consent=true`),
poll `GET /api/v1/voice-samples/{id}/status` until `ready`, `POST /api/v1/clone` `{sampleId, text}`, poll
`GET /api/v1/clone/{jobId}/status` until `succeeded`, `GET /api/v1/clone/{jobId}/result`, download its
`audioUrl` and check it is a WAV whose length is the `durationMs` it was given and plausible for the text.
Samples are real speech, LibriSpeech test-other clips (CC BY 4.0; `--speech`, by default the clips
VOICEGATE_SPEECH_CLIPS points to, devkit/clips.py; espeak-ng speech where that directory is missing), one speaker
per user, every sample other clips.

Clients behave as real ones must: a 503 or 429 (with Retry-After honoured), a 409
`idempotency_key_in_flight`, a 5xx or a connection error is retried with exponential backoff and full
jitter (0.2 s doubling up to 5 s), and each POST carries one `Idempotency-Key` through all its retries, so a
retry after a lost answer stores once. Polls come about once a second per flow.

Faults, each while flows are in flight, at a share of the flows' steps done (five steps a flow: the upload
answered 202, the sample `ready`, the clone answered 202, the job `succeeded`, its audio checked):
  25 %  kill -9 of the whole stack (the `up` process; its Postgres keeps running), `up` started again at
        once on the same data directory and ports (it adopts that Postgres);
  42 %  kill -9 of the Postgres postmaster (up's supervisor starts it again);
  60 %  kill -9 of the whole stack again, `up` started again at once.
A probe user asks `GET /api/v1/voice-samples` (a database read) every 0.1 s throughout: a fault's recovery
is the time from the kill to the first 2xx answer after the first refusal it caused. `--no-faults` runs the
same flows without the kills, for the flows' times beside their baseline.

Once every flow has ended, the run waits (up to 3 minutes) for the stack to settle, then checks against the
database and prints a report; it exits 1 when any check fails:
  - every flow's job `succeeded` and its audio downloaded and checked (n of all);
  - one provider voice per sample: the provider voice ids each sample reached (its voices'
    `provider_voice_id`, its attempts', the voices' provider references, and the `local` provider's own
    profiles, `voicegate.local_voices`, by each attempt's enrolment key) number exactly one, and the local
    provider holds no profile that no attempt's enrolment key names;
  - nothing left open: attempts queued/processing/verifying, synthesis jobs queued/processing, samples
    pending/processing, messages in each pgmq work queue and the dead-letter queue, Idempotency-Keys still
    claimed `in_flight`, `storage.objects` rows no row claims (the query of `voicegate ops
    sweep-orphan-objects`, with no grace period); files the Storage stand-in holds without an object row
    (temporary uploads a kill cut off, say) are counted but left to the maintenance sweep, as designed;
  - no 500 (an outage must answer 503: docs/concepts.md) and every fault injected while flows were in flight;
and it prints each fault's recovery and the run's total time. `up`'s logs (one per start) are kept with the
data directory when a check fails or with `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import wave
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import soundfile
from psycopg import sql
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend import queues  # noqa: E402 - after the path setup above
from backend.storage.orphans import sweep_orphan_objects  # noqa: E402
from devkit.clips import LIBRISPEECH  # noqa: E402
from devkit.db import postmaster_pid  # noqa: E402
from devkit.up import Running, dev_token, is_ready, wait_for  # noqa: E402
from standins.postgres import for_data_dir, free_port  # noqa: E402
from standins.storage.orphan_files import find_orphan_files  # noqa: E402

SPEECH = LIBRISPEECH  # VOICEGATE_SPEECH_CLIPS names another folder
#: Steps of a flow, in order; the faults are scheduled by the share of all flows' steps done.
STEPS = ("upload", "sample check", "clone request", "clone and synthesis", "download")
#: (share of the steps done, fault): the schedule.
SCHEDULE = ((0.25, "stack"), (0.42, "postgres"), (0.60, "stack"))
#: Seconds of speech a sample has at least (clips of one speaker joined with 0.3 s pauses).
SAMPLE_S = 8.0
#: Seconds between the starts of one user's flows.
STAGGER_S = 2.0
#: Seconds a flow waits for its sample to be ready, or its job to end.
STAGE_PATIENCE_S = 900.0
#: Seconds one request is retried for before its flow gives up.
REQUEST_PATIENCE_S = 600.0
#: Seconds the run waits after the flows for the queues and rows to settle.
SETTLE_S = 180.0
#: Backoff: the first retry's ceiling, doubling per retry up to the cap (full jitter below it).
BACKOFF_BASE_S, BACKOFF_CAP_S = 0.2, 5.0
#: Seconds between a flow's polls (with up to a quarter more, at random), and between the probe's.
POLL_S, PROBE_S = 1.0, 0.1
#: Seconds of speech a word of the text may take in the result, at least and at most.
WORD_S = (0.15, 1.0)


# -- the stack --------------------------------------------------------------------------------------


@dataclass
class Stack:
    """`voicegate up` on one data directory and fixed ports, started again after each kill; each start
    writes its own log (`up-<n>.log`)."""

    root: Path
    port: int = field(default_factory=free_port)
    pg_port: int = field(default_factory=free_port)
    starts: list[Running] = field(default_factory=list)

    @property
    def up(self) -> Running:
        """The `up` started last."""
        return self.starts[-1]

    @property
    def base_url(self) -> str:
        """The API's address, the same for every start."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Running:
        """Start `up` (as devkit.up.start_up does, on this stack's ports)."""
        env = {
            **os.environ,
            "VOICEGATE_DATA_DIR": str(self.root / "data"),
            "VOICEGATE_PORT": str(self.port),
            "VOICEGATE_PG_PORT": str(self.pg_port),
            "VOICEGATE_LOG_LEVEL": "WARNING",
        }
        env.pop("DATABASE_URL", None)
        log = self.root / f"up-{len(self.starts) + 1}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "voicegate.cli", "up"], env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT
            )
        self.starts.append(Running(process, self.base_url, for_data_dir(self.root / "data", self.pg_port), log))
        return self.up

    def kill_up(self) -> int:
        """kill -9 of the `up` process (its Postgres keeps running); its pid."""
        process = self.up.process
        process.kill()
        process.wait(timeout=30)
        return process.pid

    def kill_postmaster(self) -> int:
        """kill -9 of the Postgres postmaster (`up`'s supervisor starts it again); its pid."""
        pid = postmaster_pid(self.up.pg.data_dir)
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        """SIGTERM to `up`, then its Postgres stopped whoever started it."""
        process = self.up.process
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        if self.up.pg.postmaster_state() == "running":
            self.up.pg.stop(mode="immediate")


# -- samples ----------------------------------------------------------------------------------------


def librispeech_samples(directory: Path, users: int, per_user: int) -> list[list[bytes]]:
    """For each user, `per_user` WAVs of one speaker (speakers in turn), each at least SAMPLE_S of that
    speaker's clips joined in order from a clip no other sample of that speaker starts with."""
    speakers = sorted(path for path in directory.iterdir() if path.is_dir())
    if not speakers:
        raise SystemExit(f"no speaker directories in {directory}")
    sharing = -(-users // len(speakers))  # users per speaker, at most
    samples = []
    for user in range(users):
        clips = sorted((speakers[user % len(speakers)]).glob("*.flac"))
        if len(clips) < sharing * per_user:
            raise SystemExit(f"{speakers[user % len(speakers)]} has {len(clips)} clips; {sharing * per_user} needed")
        takes = []
        for flow in range(per_user):
            start, parts, seconds, rate = flow * sharing + user // len(speakers), [], 0.0, 0
            for clip in clips[start:] + clips[:start]:
                audio, rate = soundfile.read(clip, dtype="int16")
                parts += [audio, np.zeros(int(rate * 0.3), dtype=np.int16)]
                seconds += audio.size / rate + 0.3
                if seconds >= SAMPLE_S:
                    break
            takes.append(pcm_wav(np.concatenate(parts[:-1]), rate))
        samples.append(takes)
    return samples


def espeak_samples(users: int, per_user: int) -> list[list[bytes]]:
    """espeak-ng speech (devkit.audio_corpus), for a machine without the LibriSpeech clips."""
    from devkit.audio_corpus import recording, speech_mono, wav_bytes  # noqa: PLC0415 - only without the clips

    return [
        [wav_bytes(recording(speech_mono(SAMPLE_S, seed=u * per_user + f), seed=f)) for f in range(per_user)]
        for u in range(users)
    ]


def pcm_wav(frames: np.ndarray[Any, np.dtype[np.int16]], rate: int) -> bytes:
    """Mono 16-bit PCM WAV."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames.tobytes())
    return buffer.getvalue()


def wav_seconds(data: bytes) -> float:
    """The length of a WAV; ValueError when it is none."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"not a RIFF WAVE file (starts {data[:12]!r})")
    try:
        with wave.open(io.BytesIO(data)) as audio:
            return float(audio.getnframes() / audio.getframerate())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a readable WAV: {exc}") from exc


# -- clients ----------------------------------------------------------------------------------------


class Answers:
    """What the clients were answered, counted across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.server_errors: list[str] = []

    def add(self, kind: str, detail: str | None = None) -> None:
        """Count one answer (or failure to get one) of `kind`; a 500's `detail` is kept for the report."""
        with self._lock:
            self.counts[kind] += 1
            if kind == "500" and detail is not None and len(self.server_errors) < 10:
                self.server_errors.append(detail)


class GaveUp(Exception):
    """A flow's request or wait ran out of patience, or was answered with what no retry changes."""


class Client:
    """One user's HTTP client (or, without a token, a browser's for signed URLs): retries what a real client
    must, with backoff and jitter."""

    def __init__(self, base_url: str, token: str | None, answers: Answers) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=httpx.Timeout(60.0, connect=5.0),
            limits=httpx.Limits(max_connections=16),
        )
        self.answers = answers

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """`method url` until it gets an answer no retry would change (2xx, or a 4xx other than 429 and 409
        `idempotency_key_in_flight`); a POST carries one Idempotency-Key through all its tries."""
        headers = {"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else {}
        deadline = time.monotonic() + REQUEST_PATIENCE_S
        for retry in itertools.count():
            wait = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**retry))  # noqa: S311 - jitter
            try:
                response = self.http.request(method, url, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                self.answers.add("connection error")
                why = f"{type(exc).__name__}: {exc}"
            else:
                status, code = response.status_code, problem_code(response)
                if status < 400 or (status < 500 and status != 429 and code != "idempotency_key_in_flight"):
                    self.answers.add(f"{status // 100}xx" if status < 400 else str(status))
                    return response
                self.answers.add(
                    "409 idempotency_key_in_flight" if status == 409 else str(status),
                    f"{method} {url}: {response.text}",
                )
                why = f"{status} {code or response.text[:200]}"
                if (after := response.headers.get("retry-after", "")).isdigit():
                    wait = int(after) + random.uniform(0, 0.25 * int(after) + 0.1)  # noqa: S311 - jitter
            if time.monotonic() + wait > deadline:
                raise GaveUp(f"{method} {url}: still {why} after {REQUEST_PATIENCE_S:.0f} s")
            time.sleep(wait)
        raise AssertionError("unreachable: itertools.count() never ends")

    def close(self) -> None:
        """Close its connections."""
        self.http.close()


def problem_code(response: httpx.Response) -> str | None:
    """The `code` of a problem+json answer."""
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return None
    with contextlib.suppress(ValueError):
        body = response.json()
        return str(body.get("code")) if isinstance(body, dict) else None
    return None


# -- flows ------------------------------------------------------------------------------------------


@dataclass
class Flow:
    """One PRD flow and how far it got."""

    user: int
    index: int
    sample: bytes
    text: str
    steps: int = 0
    sample_id: str | None = None
    job_id: str | None = None
    audio_s: float | None = None
    error: str | None = None
    ended: bool = False
    #: When it started and ended (time.monotonic()).
    began: float = 0.0
    ended_at: float = 0.0

    @property
    def name(self) -> str:
        """`user/flow`, as the report names it."""
        return f"u{self.user}/f{self.index}"

    @property
    def stage(self) -> str:
        """The step it is working towards, `done`, or `failed`."""
        if self.error is not None:
            return "failed"
        return STEPS[self.steps] if self.steps < len(STEPS) else "done"


class Progress:
    """The flows' steps, and a condition the fault schedule waits on."""

    def __init__(self, flows: list[Flow]) -> None:
        self.flows = flows
        self.changed = threading.Condition()

    def step(self, flow: Flow) -> None:
        """`flow` finished a step."""
        with self.changed:
            flow.steps += 1
            self.changed.notify_all()

    def end(self, flow: Flow, error: str | None = None) -> None:
        """`flow` ended (with `error` when it failed)."""
        with self.changed:
            flow.error, flow.ended, flow.ended_at = error, True, time.monotonic()
            self.changed.notify_all()

    def share(self) -> float:
        """The share of all flows' steps done."""
        return sum(flow.steps for flow in self.flows) / (len(STEPS) * len(self.flows))

    def reached(self, share: float) -> Callable[[], bool]:
        """A predicate: `share` of all flows' steps are done."""
        return lambda: self.share() >= share

    def in_flight(self) -> list[Flow]:
        """Flows started and not ended."""
        return [flow for flow in self.flows if flow.began and not flow.ended]

    def wait(self, predicate: Callable[[], bool], seconds: float) -> bool:
        """Wait until `predicate` holds (checked whenever a flow moves), at most `seconds`."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout=seconds)


def run_flow(flow: Flow, client: Client, downloads: Client, progress: Progress) -> None:
    """Drive `flow` to its checked audio, or note why it could not get there."""
    try:
        time.sleep(flow.index * STAGGER_S + random.uniform(0, 1))  # noqa: S311 - spread the starts
        flow.began = time.monotonic()
        uploaded = client.request(
            "POST",
            "/api/v1/voice-samples",
            files={"file": (f"take-{flow.index}.wav", flow.sample, "audio/wav")},
            data={"consent": "true"},
        )
        flow.sample_id = expect(uploaded, 202)["sampleId"]
        progress.step(flow)
        poll(client, f"/api/v1/voice-samples/{flow.sample_id}/status", {"ready"}, {"failed"})
        progress.step(flow)
        accepted = client.request("POST", "/api/v1/clone", json={"sampleId": flow.sample_id, "text": flow.text})
        flow.job_id = expect(accepted, 202)["jobId"]
        progress.step(flow)
        poll(client, f"/api/v1/clone/{flow.job_id}/status", {"succeeded"}, {"failed", "canceled"})
        progress.step(flow)
        result = expect(client.request("GET", f"/api/v1/clone/{flow.job_id}/result"), 200)
        flow.audio_s = check_audio(downloads, result, flow.text)
        progress.step(flow)
        progress.end(flow)
    except Exception as exc:  # whatever stopped it is its failure, for the report
        progress.end(flow, f"{flow.stage}: {type(exc).__name__}: {exc}")


def expect(response: httpx.Response, status: int) -> dict[str, Any]:
    """The JSON body of a `status` answer; GaveUp for any other."""
    if response.status_code != status:
        raise GaveUp(f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


def poll(client: Client, url: str, done: set[str], failed: set[str]) -> dict[str, Any]:
    """GET `url` about once a second until its `status` is in `done`; GaveUp when it is in `failed` or
    STAGE_PATIENCE_S pass."""
    deadline = time.monotonic() + STAGE_PATIENCE_S
    while True:
        body = expect(client.request("GET", url), 200)
        if body["status"] in done:
            return body
        if body["status"] in failed:
            raise GaveUp(f"{url}: {body['status']}: {body}")
        if time.monotonic() > deadline:
            raise GaveUp(f"{url}: still {body['status']} after {STAGE_PATIENCE_S:.0f} s")
        time.sleep(POLL_S + random.uniform(0, POLL_S / 4))  # noqa: S311 - jitter


def check_audio(downloads: Client, result: dict[str, Any], text: str) -> float:
    """Download the result's `audioUrl` and check it is a WAV of `durationMs` (within 50 ms) and of a
    plausible length for `text`; its seconds."""
    response = downloads.request("GET", result["audioUrl"])
    if response.status_code != 200:
        raise GaveUp(f"download: {response.status_code} {response.text[:200]}")
    seconds = wav_seconds(response.content)
    if abs(seconds * 1000 - result["durationMs"]) > 50:
        raise ValueError(f"the WAV holds {seconds:.3f} s, the result says {result['durationMs']} ms")
    words = len(text.split())
    if not WORD_S[0] * words <= seconds <= WORD_S[1] * words:
        raise ValueError(f"{seconds:.2f} s of audio for {words} words")
    return seconds


# -- the probe --------------------------------------------------------------------------------------


@dataclass
class Probe:
    """A database read asked every PROBE_S: (sent, answered, 2xx?) of each."""

    base_url: str
    token: str
    seen: list[tuple[float, float, bool]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Ask until `stop` (a fresh connection each time: no pooled one outlives a kill)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                ok = httpx.get(f"{self.base_url}/api/v1/voice-samples", headers=headers, timeout=5).is_success
            except httpx.TransportError:
                ok = False
            self.seen.append((sent, time.monotonic(), ok))
            self.stop.wait(max(0.0, sent + PROBE_S - time.monotonic()))

    def recovery(self, fault_at: float) -> tuple[float | None, float | None, int]:
        """After a fault at `fault_at`: seconds to its first refusal, seconds to the first 2xx after that
        refusal, and the refusals between; (None, None, 0) when it refused nothing."""
        after = [(sent, answered, ok) for sent, answered, ok in self.seen if sent >= fault_at]
        first_refusal = next((i for i, (_, _, ok) in enumerate(after) if not ok), None)
        if first_refusal is None:
            return None, None, 0
        back = next(((answered, i) for i, (_, answered, ok) in enumerate(after) if ok and i > first_refusal), None)
        if back is None:
            return after[first_refusal][1] - fault_at, None, len(after) - first_refusal
        return after[first_refusal][1] - fault_at, back[0] - fault_at, back[1] - first_refusal


@dataclass
class Fault:
    """One fault as it was injected."""

    kind: str
    share: float
    at: float
    pid: int
    #: The flows in flight when it was injected, and the step each was working on then.
    in_flight: list[Flow]
    stages: Counter[str]
    restarted_pid: int | None = None

    @property
    def name(self) -> str:
        """What was killed."""
        return "kill -9 of up (the whole stack)" if self.kind == "stack" else "kill -9 of the Postgres postmaster"


# -- the database's account ------------------------------------------------------------------------

_PROVIDER_VOICES = """
with sample_voices as (
  select s.id as sample_id, s.voice_id from public.voice_samples s where s.voice_id is not null
  union select a.sample_id, a.voice_id from public.voice_clone_attempts a where a.sample_id is not null
  union select m.sample_id, a.voice_id
          from public.voice_clone_attempt_samples m join public.voice_clone_attempts a on a.id = m.attempt_id
),
sample_attempts as (
  select a.sample_id, a.id, a.enrolment_key, a.provider_voice_id
    from public.voice_clone_attempts a where a.sample_id is not null
  union select m.sample_id, a.id, a.enrolment_key, a.provider_voice_id
          from public.voice_clone_attempt_samples m join public.voice_clone_attempts a on a.id = m.attempt_id
),
reached as (
  select sv.sample_id, v.provider_voice_id as pvid
    from sample_voices sv join public.voices v on v.id = sv.voice_id where v.provider_voice_id is not null
  union select sv.sample_id, r.provider_voice_id
          from sample_voices sv join public.voice_provider_references r on r.voice_id = sv.voice_id
  union select sa.sample_id, sa.provider_voice_id from sample_attempts sa where sa.provider_voice_id is not null
  union select sa.sample_id, l.voice_id
          from sample_attempts sa join voicegate.local_voices l on l.enrolment_key = sa.enrolment_key
)
select s.id::text as sample_id,
       (select count(distinct voice_id) from sample_voices sv where sv.sample_id = s.id) as voices,
       (select count(distinct id) from sample_attempts sa where sa.sample_id = s.id) as attempts,
       (select count(distinct pvid) from reached r where r.sample_id = s.id) as provider_voices,
       (select string_agg(distinct pvid, ' ') from reached r where r.sample_id = s.id) as provider_voice_ids
  from public.voice_samples s
 where s.id = any(%(ids)s::uuid[])
"""

_UNCLAIMED_PROFILES = """
select count(*) as n from voicegate.local_voices l
 where not exists (select 1 from public.voice_clone_attempts a where a.enrolment_key = l.enrolment_key)
"""

_OPEN = {
    "attempts queued/processing/verifying": (
        "select count(*) as n from public.voice_clone_attempts where status in ('queued', 'processing', 'verifying')"
    ),
    "synthesis jobs queued/processing": (
        "select count(*) as n from public.synthesis_jobs where status in ('queued', 'processing')"
    ),
    "samples pending/processing": (
        "select count(*) as n from public.voice_samples where status in ('pending', 'processing')"
    ),
    "Idempotency-Keys still in flight": (
        "select count(*) as n from voicegate.idempotency_keys where state = 'in_flight'"
    ),
}


def open_counts(conn: psycopg.Connection[dict[str, Any]]) -> dict[str, int]:
    """What is still open, by what it is: the rows of `_OPEN`, and the messages in each queue."""
    counts: dict[str, int] = {}
    for what, query in _OPEN.items():
        row = conn.execute(query).fetchone()
        counts[what] = int(row["n"]) if row else 0
    for queue in queues.ALL:
        table = sql.Identifier("pgmq", f"q_{queue}")
        row = conn.execute(sql.SQL("select count(*) as n from {}").format(table)).fetchone()
        counts[f"messages in {queue}"] = int(row["n"]) if row else 0
    return counts


def queue_detail(conn: psycopg.Connection[dict[str, Any]], queue: str) -> str:
    """How often a queue's messages were read, and in how many seconds they are visible again."""
    row = conn.execute(
        sql.SQL(
            "select min(read_ct) as least, max(read_ct) as most, extract(epoch from min(vt) - now())::float as soon,"
            " extract(epoch from max(vt) - now())::float as late from {}"
        ).format(sql.Identifier("pgmq", f"q_{queue}"))
    ).fetchone()
    if row is None or row["least"] is None:
        return "gone"
    soon, late = max(0.0, row["soon"]), max(0.0, row["late"])
    return f"read {row['least']}-{row['most']} times, visible again in {soon:.0f} to {late:.0f} s"


@dataclass
class Orphans:
    """What no row claims, written before now (no grace period: nothing is in flight any more)."""

    #: `storage.objects` rows no row claims (the query of `voicegate ops sweep-orphan-objects`).
    objects: list[str]
    #: Files the Storage stand-in holds in a bucket without an object row, and its temporary uploads: what
    #: a process killed mid-upload leaves (the file moved into place before its row's commit, or the upload
    #: cut off), which the maintenance sweep removes once VOICEGATE_ORPHAN_GRACE has passed.
    files: list[str]
    uploads: list[str]


def orphans(dsn: str, storage_root: Path) -> Orphans:
    """What no row claims, read as `voicegate ops status` reads it."""

    async def find() -> Orphans:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
            row = await (await conn.execute("select now() as now")).fetchone()
            now: datetime = row["now"] if row else datetime.now(UTC)
            objects: list[str] = []
            after = None
            while True:
                batch = await sweep_orphan_objects(
                    conn, None, written_before=now, limit=500, apply=False, actor="bench/chaos.py", after=after
                )
                objects += [f"{o.bucket_id}/{o.name}" for o in batch.objects]
                if (after := batch.next_after) is None:
                    break
            files = await find_orphan_files(conn, storage_root, written_before=now, limit=100_000)
        return Orphans(
            objects,
            [f"{f.bucket_id}/{f.name} ({f.size_bytes} bytes)" for f in files if f.bucket_id is not None],
            [f"{f.name} ({f.size_bytes} bytes)" for f in files if f.bucket_id is None],
        )

    return asyncio.run(find())


# -- the run ----------------------------------------------------------------------------------------


@dataclass
class Run:
    """What the flows, the faults and the clients saw."""

    flows: list[Flow]
    schedule: tuple[tuple[float, str], ...]
    answers: Answers
    probe: Probe
    faults: list[Fault] = field(default_factory=list)
    began: float = 0.0
    took: float = 0.0


def drive(stack: Stack, flows: list[Flow], schedule: tuple[tuple[float, str], ...], say: Callable[[str], None]) -> Run:
    """Run `flows` (one user's with one client) and the fault `schedule`, until every flow has ended."""
    tokens = {user: dev_token(stack.up, f"chaos-{user}@example.test") for user in {flow.user for flow in flows}}
    run = Run(flows, schedule, Answers(), Probe(stack.base_url, dev_token(stack.up, "chaos-probe@example.test")))
    progress = Progress(flows)
    clients = {user: Client(stack.base_url, token, run.answers) for user, token in tokens.items()}
    downloads = Client(stack.base_url, None, run.answers)
    threading.Thread(target=run.probe.run, name="probe", daemon=True).start()
    run.began = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=len(flows), thread_name_prefix="flow") as pool:
            for flow in flows:
                pool.submit(run_flow, flow, clients[flow.user], downloads, progress)
            for share, kind in schedule:
                if not progress.wait(progress.reached(share), STAGE_PATIENCE_S):
                    say(f"the flows did not reach {share:.0%} of their steps: no {kind} kill")
                    break
                run.faults.append(inject(stack, kind, progress, say))
            progress.wait(lambda: all(flow.ended for flow in flows), STAGE_PATIENCE_S * 2)
            run.took = time.monotonic() - run.began
            say(f"flows ended: {sum(f.error is None for f in flows)} of {len(flows)} reached their checked audio")
    finally:
        run.probe.stop.set()
        for client in clients.values():
            client.close()
        downloads.close()
    return run


def inject(stack: Stack, kind: str, progress: Progress, say: Callable[[str], None]) -> Fault:
    """One fault of the schedule, now."""
    in_flight, share, at = progress.in_flight(), progress.share(), time.monotonic()
    stages = Counter(flow.stage for flow in in_flight)
    flying = f"{len(in_flight)} flows in flight"
    if kind == "stack":
        fault = Fault(kind, share, at, stack.kill_up(), in_flight, stages)
        fault.restarted_pid = stack.start().process.pid
        say(
            f"kill -9 of up (pid {fault.pid}) at {share:.0%} of the steps, {flying};"
            f" up started again (pid {fault.restarted_pid})"
        )
    else:
        fault = Fault(kind, share, at, stack.kill_postmaster(), in_flight, stages)
        say(f"kill -9 of the Postgres postmaster (pid {fault.pid}) at {share:.0%} of the steps, {flying}")
    return fault


@dataclass
class Account:
    """The database's account once the stack settled."""

    settled_s: float
    still_open: dict[str, int]
    #: What was open when the flows had ended, and the seconds after which each had none left.
    open_at_end: dict[str, int]
    open_detail: dict[str, str]
    cleared_after: dict[str, float]
    per_sample: list[dict[str, Any]]
    job_status: dict[str, str]
    unclaimed_profiles: int
    orphans: Orphans


def account(stack: Stack, flows: list[Flow]) -> Account:
    """Wait (up to SETTLE_S) until nothing is open, then read what the run left."""
    dsn = stack.up.pg.dsn
    began = time.monotonic()
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        # Work a kill interrupted is finished once its message is visible again (its visibility timeout, its
        # lease) or a sweep runs: polled, as nothing tells an outsider when that happens.
        at_end = still = open_counts(conn)
        details = {
            f"messages in {queue}": queue_detail(conn, queue) for queue in queues.ALL if at_end[f"messages in {queue}"]
        }
        cleared: dict[str, float] = {}
        while any(still.values()) and time.monotonic() < began + SETTLE_S:
            time.sleep(1)
            still = open_counts(conn)
            cleared |= {what: time.monotonic() - began for what, n in still.items() if not n and what not in cleared}
        settled = time.monotonic() - began
        ids = [f.sample_id for f in flows if f.sample_id is not None]
        per_sample = conn.execute(_PROVIDER_VOICES, {"ids": ids}).fetchall()
        job_ids = [f.job_id for f in flows if f.job_id is not None]
        jobs = conn.execute("select id::text, status from public.synthesis_jobs where id = any(%s::uuid[])", (job_ids,))
        job_status = {row["id"]: row["status"] for row in jobs.fetchall()}
        unclaimed = conn.execute(_UNCLAIMED_PROFILES).fetchone()
    left = orphans(dsn, stack.root / "data" / "storage")
    return Account(
        settled_s=settled,
        still_open=still,
        open_at_end={what: n for what, n in at_end.items() if n},
        open_detail=details,
        cleared_after=cleared,
        per_sample=per_sample,
        job_status=job_status,
        unclaimed_profiles=int(unclaimed["n"]) if unclaimed else 0,
        orphans=left,
    )


@dataclass
class Check:
    """One line of the verdict."""

    what: str
    value: str
    ok: bool


def report(run: Run, found: Account) -> list[Check]:
    """Print what the run saw and the database holds; the checks."""
    checks = report_flows(run, found) + report_voices(run, found) + report_open(found) + report_faults(run)
    print("\nchecks")
    width = max(len(check.what) for check in checks)
    for check in checks:
        print(f"  {check.what:<{width}}  {check.value:>8}  {'ok' if check.ok else 'FAILED'}")
    return checks


def report_flows(run: Run, found: Account) -> list[Check]:
    """Every flow's job succeeded, its audio downloaded and checked."""
    flows = run.flows
    print("\nflows")
    done = [f for f in flows if f.error is None and f.job_id and found.job_status.get(f.job_id) == "succeeded"]
    for flow in flows:
        if flow.error is not None:
            print(f"  {flow.name} failed at {flow.error}")
    if took := sorted(f.ended_at - f.began for f in done):
        print(
            f"  each from its upload to its checked audio: median {took[len(took) // 2]:.1f} s,"
            f" slowest {took[-1]:.1f} s"
        )
    if audio := [f.audio_s for f in done if f.audio_s is not None]:
        print(f"  results: RIFF WAVE of {min(audio):.2f}-{max(audio):.2f} s, each of the durationMs its result gave")
    return [Check("jobs succeeded, audio downloaded and checked", f"{len(done)}/{len(flows)}", len(done) == len(flows))]


def report_voices(run: Run, found: Account) -> list[Check]:
    """One provider voice per sample, and no provider voice without its attempt."""
    print("one provider voice per sample")
    single = sum(row["provider_voices"] == 1 for row in found.per_sample)
    for row in found.per_sample:
        if row["provider_voices"] != 1:
            print(
                f"  sample {row['sample_id']}: {row['provider_voices']} provider voices ({row['provider_voice_ids']}),"
                f" {row['voices']} voices, {row['attempts']} attempts"
            )
    print(
        f"  per sample, how many (of samples): voices {histogram(r['voices'] for r in found.per_sample)};"
        f" attempts {histogram(r['attempts'] for r in found.per_sample)};"
        f" provider voice ids {histogram(r['provider_voices'] for r in found.per_sample)}"
    )
    unclaimed = found.unclaimed_profiles
    return [
        Check("samples with exactly one provider voice", f"{single}/{len(run.flows)}", single == len(run.flows)),
        Check("local provider profiles no attempt names", str(unclaimed), unclaimed == 0),
    ]


def report_open(found: Account) -> list[Check]:
    """Nothing left open."""
    print(f"nothing left open (read {found.settled_s:.1f} s after the flows ended)")
    for what, n in found.open_at_end.items():
        after = found.cleared_after.get(what)
        detail = f" ({found.open_detail[what]})" if what in found.open_detail else ""
        print(f"  when the flows ended: {what} {n}{detail}" + (f"; none left {after:.0f} s later" if after else ""))
    left = found.orphans
    for name in left.objects[:10]:
        print(f"  storage.objects row no row claims: {name}")
    print(
        "  left to the maintenance sweep (once VOICEGATE_ORPHAN_GRACE has passed): temporary uploads a kill cut"
        f" off {len(left.uploads)}, stored files without an object row {len(left.files)}"
    )
    for name in (left.uploads + left.files)[:10]:
        print(f"    {name}")
    return [
        *(Check(what, str(count), count == 0) for what, count in found.still_open.items()),
        Check("storage.objects rows no row claims", str(len(left.objects)), not left.objects),
    ]


def report_faults(run: Run) -> list[Check]:
    """Each fault's recovery, and what the clients were answered."""
    checks = []
    if run.faults:
        print("faults (recovery: from the kill to the API's first 2xx after the first refusal it caused)")
    for number, fault in enumerate(run.faults, 1):
        refused, back, refusals = run.probe.recovery(fault.at)
        if refused is None:
            outcome = "no refusal seen"
        elif back is None:
            outcome = f"refused from {refused:.1f} s, never 2xx again"
        else:
            outcome = f"refused from {refused:.1f} s ({refusals} probes), 2xx again {back:.1f} s after the kill"
        print(f"  {number}. {fault.name} at +{fault.at - run.began:.1f} s, {fault.share:.0%} of the steps: {outcome}")
        stages = ", ".join(f"{stage} {n}" for stage, n in sorted(fault.stages.items()))
        print(f"     {len(fault.in_flight)} flows in flight, by the step each was on: {stages}")
        if fault.in_flight and all(flow.ended for flow in fault.in_flight):
            last = max(flow.ended_at for flow in fault.in_flight) - fault.at
            print(f"     the last of them ended {last:.1f} s after the kill")
        checks.append(Check(f"fault {number} ({fault.kind}) recovered", f"{back:.1f} s" if back else "no", bool(back)))
    expected = len(run.schedule)
    flying = len(run.faults) == expected and all(fault.in_flight for fault in run.faults)
    checks.append(Check("faults injected with flows in flight", f"{len(run.faults)}/{expected}", flying))
    print(f"clients' answers: {', '.join(f'{kind} {n}' for kind, n in sorted(run.answers.counts.items()))}")
    for detail in run.answers.server_errors:
        print(f"  500: {detail[:300]}")
    checks.append(Check("500 answers", str(run.answers.counts["500"]), run.answers.counts["500"] == 0))
    return checks


def histogram(values: Iterable[Any]) -> str:
    """`1 (49), 2 (1)`: each value and how many times it came."""
    return ", ".join(f"{value} ({n})" for value, n in sorted(Counter(values).items())) or "none"


def main() -> int:
    """Run the flows under the faults, check the database, print the report; 1 when a check failed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--flows-per-user", type=int, default=5)
    parser.add_argument("--speech", type=Path, default=SPEECH, help="LibriSpeech speaker directories of FLAC clips")
    parser.add_argument("--seed", type=int, default=45, help="seed of the jitter and of the flows' start times")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and up's logs")
    parser.add_argument("--no-faults", action="store_true", help="the same run without the kills: the baseline")
    args = parser.parse_args()
    random.seed(args.seed)
    began = time.monotonic()

    def say(line: str) -> None:
        print(f"[{time.monotonic() - began:6.1f} s] {line}", flush=True)

    if args.speech.is_dir():
        samples = librispeech_samples(args.speech, args.users, args.flows_per_user)
        speech = f"LibriSpeech test-other clips (CC BY 4.0) from {args.speech}"
    else:
        samples = espeak_samples(args.users, args.flows_per_user)
        speech = f"espeak-ng speech ({args.speech} is missing)"
    lengths = [wav_seconds(take) for takes in samples for take in takes]
    flows = [
        Flow(
            user,
            index,
            samples[user][index],
            f"This is flow {index + 1} of user {user + 1} in the chaos run, spoken in a voice cloned a moment ago"
            " while the stack was killed under it.",
        )
        for user in range(args.users)
        for index in range(args.flows_per_user)
    ]
    stack = Stack(Path(tempfile.mkdtemp(prefix="voicegate-chaos-")))
    print(
        f"chaos run: {args.users} users x {args.flows_per_user} PRD flows against voicegate up on {stack.base_url}"
        f" (data in {stack.root})\nsamples: {speech}, {min(lengths):.1f}-{max(lengths):.1f} s each",
        flush=True,
    )
    checks: list[Check] = []
    try:
        first = stack.start()
        wait_for(lambda: is_ready(stack.base_url), 180, "/readyz 200", first)
        say(f"up (pid {first.process.pid}) ready, its Postgres on port {stack.pg_port}")
        run = drive(stack, flows, () if args.no_faults else SCHEDULE, say)
        found = account(stack, flows)
        checks = report(run, found)
        print(f"\nstarts of up: {len(stack.starts)}, each with its log: {', '.join(s.log.name for s in stack.starts)}")
        print(
            f"total {time.monotonic() - began:.1f} s: the flows {run.took:.1f} s, settling {found.settled_s:.1f} s,"
            " the rest setting up and checking"
        )
    finally:
        stack.stop()
        failed = [check for check in checks if not check.ok]
        if args.keep or failed or not checks:
            print(f"kept {stack.root}")
        else:
            shutil.rmtree(stack.root, ignore_errors=True)
    print(f"\nRESULT: {'FAILED: ' + '; '.join(c.what for c in failed) if failed else 'PASS'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
