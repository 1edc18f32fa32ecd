"""Benchmark: one user spending as fast as they can, against a real `voicegate up` and the ElevenLabs fake.

    python bench/spend.py [--seconds 20] [--clients 16] [--quota 6000] [--queued 20] [--jobs 5]

About two minutes. `up` runs with VOICEGATE_USER_CHARACTERS=--quota and VOICEGATE_USER_QUEUED_JOBS=--queued
(its own consumers speak the jobs); the fake (in this process, so every text it is sent is counted here) takes
`--latency` seconds a call, as a provider does. User S's `--clients` clients send synthesis jobs of a few sentences
back to back for `--seconds`, each answer counted by status and code. Meanwhile user O sends `--jobs` one-sentence
jobs one after another, each timed from its 202 to `succeeded`; O's time alone, measured first in the same run,
is the baseline. Printed, each beside its bound or baseline:

- the characters the fake was sent in S's voice, against the quota (target: never above it), and against the
  usage ledger's sum for S (target: equal);
- the most jobs of S's queued or running at once, sampled every 0.1 s in the database (target: never above
  `--queued`);
- O's median job time under S's load against alone (target: at most 1.5x).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devkit.db import seed_consent  # noqa: E402 - after the path setup above
from devkit.up import Running, dev_token, running_up  # noqa: E402
from fakes import ElevenLabsFake, serve  # noqa: E402
from fakes.elevenlabs import ElevenVoice  # noqa: E402

#: What S asks for each time: three sentences, about 180 characters.
S_TEXT = (
    "The quick brown fox jumps over the lazy dog by the river. "
    "A second sentence follows, so the job is spoken in more than one piece. "
    "And a third, to make the job a little longer."
)
O_TEXT = "Hello there, this is a short job."
SLOWDOWN_TARGET = 1.5


def subject(token: str) -> uuid.UUID:
    """The user id an access token names (its `sub`; the token is our own, not checked here)."""
    payload = token.split(".")[1]
    return uuid.UUID(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


def ready_voice(dsn: str, fake: ElevenLabsFake, owner: uuid.UUID, name: str) -> tuple[str, str]:
    """A ready ElevenLabs voice of `owner` the fake holds: (voicegate's id, the provider's)."""
    provider_id = f"v{owner.hex[:19]}"
    fake.voices[provider_id] = ElevenVoice(provider_id, name, None, {}, [])
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "insert into voices (owner_id, name, status, tts_provider, provider_voice_id, consent_id)"
            " values (%s, %s, 'ready', 'elevenlabs', %s, %s) returning id",
            (owner, name, provider_id, seed_consent(conn, owner)),
        ).fetchone()
    assert row is not None
    return str(row[0]), provider_id


def sent_to(fake: ElevenLabsFake, provider_id: str) -> int:
    """Characters the fake was sent to speak in `provider_id`."""
    return sum(
        len(request.json()["text"])
        for request in fake.requests_to("POST", "/v1/text-to-speech")
        if f"/v1/text-to-speech/{provider_id}" in request.path
    )


async def timed_job(client: httpx.AsyncClient, token: str, voice_id: str) -> float:
    """Seconds from a job's 202 to its `succeeded`."""
    headers = {"Authorization": f"Bearer {token}"}
    started = time.monotonic()
    answer = await client.post("/api/v1/clone", json={"voiceId": voice_id, "text": O_TEXT}, headers=headers)
    answer.raise_for_status()
    job = answer.json()["jobId"]
    deadline = started + 60
    while time.monotonic() < deadline:
        status = (await client.get(f"/api/v1/clone/{job}/status", headers=headers)).json()["status"]
        if status == "succeeded":
            return time.monotonic() - started
        if status in {"failed", "canceled"}:
            raise RuntimeError(f"O's job ended {status}")
        await asyncio.sleep(0.02)
    raise RuntimeError("O's job did not end within 60 s")


async def o_times(base: str, token: str, voice_id: str, jobs: int) -> list[float]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        return [await timed_job(client, token, voice_id) for _ in range(jobs)]


async def spend(base: str, token: str, voice_id: str, clients: int, seconds: float) -> Counter[str]:
    """S's clients sending jobs back to back for `seconds`; each answer counted by status and code."""
    answers: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {token}"}
    until = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        while time.monotonic() < until:
            try:
                answer = await http.post("/api/v1/clone", json={"voiceId": voice_id, "text": S_TEXT}, headers=headers)
            except httpx.TransportError as exc:
                # A loaded machine: counted, as a client would see it, and sent again.
                answers[type(exc).__name__] += 1
                continue
            code = answer.json().get("code", "") if answer.status_code >= 400 else ""
            answers[f"{answer.status_code} {code}".strip()] += 1
            if answer.status_code == 429:
                # As a client that honours Retry-After but no longer than the run lasts.
                wait = min(float(answer.headers.get("retry-after", "1")), until - time.monotonic())
                await asyncio.sleep(max(0.0, wait))

    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return answers


class QueuedSampler(threading.Thread):
    """The most jobs of one user queued or running at once, read every 0.1 s."""

    def __init__(self, dsn: str, owner: uuid.UUID) -> None:
        super().__init__(daemon=True)
        self.dsn, self.owner, self.most = dsn, owner, 0
        self.done = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.done.wait(0.1):
                row = conn.execute(
                    "select count(*) from synthesis_jobs where owner_id = %s and status in ('queued', 'processing')",
                    (self.owner,),
                ).fetchone()
                self.most = max(self.most, int(row[0]) if row else 0)


def settle(dsn: str, owner: uuid.UUID, within: float = 120) -> None:
    """Wait until none of `owner`'s jobs is queued or running (the quota fails the rest)."""
    deadline = time.monotonic() + within
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "select count(*) from synthesis_jobs where owner_id = %s and status in ('queued', 'processing')",
                (owner,),
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.2)
    raise RuntimeError("S's jobs did not settle")


def ledger(dsn: str, owner: uuid.UUID) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "select coalesce(sum(characters), 0) from voicegate.usage_events where owner_id = %s", (owner,)
        ).fetchone()
    return int(row[0]) if row else 0


def measure(up: Running, fake: ElevenLabsFake, args: argparse.Namespace) -> None:
    base, dsn = up.base_url, up.pg.dsn
    s_token, o_token = dev_token(up, "spender@example.test"), dev_token(up, "other@example.test")
    s_id, o_id = subject(s_token), subject(o_token)
    s_voice, s_provider = ready_voice(dsn, fake, s_id, "Spender")
    o_voice, _ = ready_voice(dsn, fake, o_id, "Other")

    alone = asyncio.run(o_times(base, o_token, o_voice, args.jobs))
    sampler = QueuedSampler(dsn, s_id)
    sampler.start()

    async def both() -> tuple[Counter[str], list[float]]:
        load = asyncio.create_task(spend(base, s_token, s_voice, args.clients, args.seconds))
        await asyncio.sleep(1)  # S's jobs are queued before O's are timed
        loaded = await o_times(base, o_token, o_voice, args.jobs)
        return await load, loaded

    answers, loaded = asyncio.run(both())
    settle(dsn, s_id)
    sampler.done.set()
    sampler.join()

    sent, counted = sent_to(fake, s_provider), ledger(dsn, s_id)
    ratio = statistics.median(loaded) / statistics.median(alone)
    print(f"S's answers in {args.seconds:g} s from {args.clients} clients: {dict(sorted(answers.items()))}")
    print(f"characters sent in S's voice     {sent:>8}   quota {args.quota:>8}   (target: at most the quota)")
    print(f"usage ledger's sum for S         {counted:>8}   sent  {sent:>8}   (target: equal)")
    print(f"S's jobs queued or running, most {sampler.most:>8}   bound {args.queued:>8}   (target: at most the bound)")
    print(
        f"O's median job time              {statistics.median(loaded):>7.3f}s   alone {statistics.median(alone):>7.3f}s"
        f"   {ratio:.2f}x (target: at most {SLOWDOWN_TARGET}x)"
    )


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    arguments.add_argument("--seconds", type=float, default=20.0)
    arguments.add_argument("--clients", type=int, default=16)
    arguments.add_argument("--quota", type=int, default=6000)
    arguments.add_argument("--queued", type=int, default=20)
    arguments.add_argument("--jobs", type=int, default=5)
    arguments.add_argument("--latency", type=float, default=0.05)
    args = arguments.parse_args()

    fake = ElevenLabsFake(max_voices=100)
    fake.faults.latency_s = args.latency
    with serve(fake) as fake_url, tempfile.TemporaryDirectory(prefix="voicegate-bench-spend-") as root:
        settings = {
            "VOICE_PROVIDER": "elevenlabs",
            "ELEVENLABS_API_KEY": fake.api_key,
            "ELEVENLABS_BASE_URL": fake_url,
            "VOICEGATE_USER_CHARACTERS": str(args.quota),
            "VOICEGATE_USER_QUEUED_JOBS": str(args.queued),
        }
        with running_up(Path(root), settings=settings) as up:
            measure(up, fake, args)


if __name__ == "__main__":
    main()
