"""A voicegate API (no consumers) served on a real port over this test's database, the ElevenLabs fake
beside it, and `voicegate worker` processes started against both: what crash tests kill and restart.

The workers run as in production (`DATABASE_URL`), so they sign with a configured C2PA chain
(VOICEGATE_C2PA_CERT / _KEY), made for the stack."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg

from backend.app import create_app
from backend.settings import settings_from_env
from devkit.audio_corpus import speech_wav
from devkit.certs import make_chain
from devkit.db import create_user
from fakes import ElevenLabsFake, serve
from standins.dev_tokens import mint_service_key, mint_user_token
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.integration.api.conftest import JWT_SECRET
from tests.support import database_url

REPO = Path(__file__).resolve().parents[2]
#: Worker timings: message visibility 1 s, lease 2 s, quick polls and retries.
WORKER_ENV = {
    "VOICEGATE_QUEUE_VT": "1",
    "VOICEGATE_LEASE_SECONDS": "2",
    "VOICEGATE_QUEUE_POLL_INTERVAL": "0.2",
    "VOICEGATE_RETRY_BASE_SECONDS": "0.2",
    "VOICEGATE_QUEUE_MAX_READS": "10",
    "VOICEGATE_MAINTENANCE_INTERVAL": "3600",
    "VOICEGATE_LOG_LEVEL": "WARNING",
}


@dataclass
class Stack:
    """What a crash test drives."""

    dsn: str
    api_url: str
    fake: ElevenLabsFake
    fake_url: str
    workdir: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)
    c2pa_env: dict[str, str] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        """The test database as the URL `DATABASE_URL` wants."""
        return database_url(self.dsn)

    def worker_env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", str(self.workdir)),
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": self.database_url,
            "SUPABASE_URL": self.api_url,
            "SUPABASE_JWT_SECRET": JWT_SECRET,
            "SUPABASE_SERVICE_ROLE_KEY": mint_service_key(JWT_SECRET),
            "VOICEGATE_DATA_DIR": str(self.workdir / "worker"),
            "VOICE_PROVIDER": "elevenlabs",
            "ELEVENLABS_API_KEY": self.fake.api_key,
            "ELEVENLABS_BASE_URL": self.fake_url,
            **self.c2pa_env,
            **WORKER_ENV,
            **extra,
        }

    def start_worker(self, **extra: str) -> subprocess.Popen[bytes]:
        """`voicegate worker` as its own process (stderr kept in the work directory)."""
        log = (self.workdir / f"worker-{len(self.workers)}.log").open("wb")
        self.logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "voicegate.cli", "worker"],
            env=self.worker_env(**extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        self.workers.append(process)
        return process

    def worker_log(self, index: int) -> str:
        return (self.workdir / f"worker-{index}.log").read_text(errors="replace")

    def seed_attempts(self, count: int) -> list[str]:
        """`count` reflections of one user, each cloned from an uploaded speech sample (ElevenLabs)."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            user = create_user(conn)
        headers = {"Authorization": f"Bearer {mint_user_token(JWT_SECRET, user)}"}
        attempt_ids = []
        with httpx.Client(base_url=self.api_url, headers=headers, timeout=30) as client:
            for n in range(count):
                reflection = client.post("/v1/reflections", json={"name": f"r{n}"}).raise_for_status().json()
                accepted = client.post(
                    f"/v1/reflections/{reflection['id']}/voice/clone",
                    data={"consent": "true", "language": "en", "provider": "elevenlabs"},
                    files={"file": ("me.wav", speech_wav(seed=n), "audio/wav")},
                ).raise_for_status()
                attempt_ids.append(accepted.json()["attemptId"])
        return attempt_ids

    def attempts(self) -> list[dict[str, Any]]:
        with psycopg.connect(self.dsn, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
            return conn.execute(
                "select a.*, r.voice = voicegate.attempt_mirror(a) as mirrored from voice_clone_attempts a"
                " left join reflections r on r.id = a.reflection_id order by a.created_at"
            ).fetchall()

    def wait_for(self, predicate: Any, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            if time.monotonic() > deadline:
                logs = "\n".join(self.worker_log(i)[-3000:] for i in range(len(self.workers)))
                raise AssertionError(f"timed out waiting for {what}; attempts={self.attempts()}\n{logs}")
            time.sleep(0.05)

    def all_finished(self) -> bool:
        return all(
            a["status"] in {"ready", "failed"} and (a["status"] == "failed" or a["preview_status"] == "ready")
            for a in self.attempts()
        )


@contextlib.contextmanager
def running_stack(dsn: str, workdir: Path) -> Iterator[Stack]:
    """The API on a free port over `dsn` (embedded-style Storage under `workdir`), and the fake."""
    fake = ElevenLabsFake(max_voices=1000)
    with serve(fake) as fake_url:
        settings = with_auth_keys(
            settings_from_env(
                {
                    "VOICEGATE_DATA_DIR": str(workdir / "api"),
                    "VOICE_PROVIDER": "elevenlabs",
                    "ELEVENLABS_API_KEY": fake.api_key,
                    "ELEVENLABS_BASE_URL": fake_url,
                }
            ),
            {"SUPABASE_JWT_SECRET": JWT_SECRET},
        )
        with serve(create_app(settings, dsn, embedded=EMBEDDED), lifespan="on") as api_url:
            chain = make_chain("ec").write(workdir / "c2pa")
            c2pa_env = {name: value for name, value in chain.items() if name.startswith("VOICEGATE_C2PA_")}
            stack = Stack(dsn=dsn, api_url=api_url, fake=fake, fake_url=fake_url, workdir=workdir, c2pa_env=c2pa_env)
            try:
                yield stack
            finally:
                for process in stack.workers:
                    if process.poll() is None:
                        process.kill()
                        process.wait(10)
                for log in stack.logs:
                    log.close()
