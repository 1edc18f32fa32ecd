"""Fixtures for the operator scripts: seeded scenes on a fresh database, row snapshots, and a runner
that calls a script's `main` in-process and returns its exit code with its table or JSON output."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from backend.providers.enrolment import key_marker
from backend.providers.enrolment import qwen_preferred_name as preferred_name
from devkit.db import create_user, one, seed_reflection
from fakes import CartesiaFake, ElevenLabsFake, QwenFake, serve
from fakes.cartesia import CartesiaVoice
from fakes.elevenlabs import ElevenVoice
from fakes.qwen import QwenVoice
from tests.provider_support import CARTESIA_KEY, ELEVEN_KEY, QWEN_KEY
from tests.support import seed_voice, transition

# Every table a script may touch; a dry run must leave all of them exactly as they were.
SNAPSHOT_TABLES = (
    "public.reflections",
    "public.voices",
    "public.voice_samples",
    "public.voice_clone_attempts",
    "public.voice_clone_attempt_events",
    "public.voice_provider_references",
    "public.synthesis_jobs",
    "voicegate.audit_events",
    "storage.objects",
    "pgmq.q_voice_clone_process",
    "pgmq.a_voice_clone_process",
    "pgmq.q_voice_dead_letter",
    "pgmq.a_voice_dead_letter",
)
PINNED = "qwen3-tts-vc-2026-01-22"
REALTIME = "qwen3-tts-vc-realtime-2026-01-15"
SUMMARY_ROW = re.compile(r"^\s*([a-z_.]+)\s+(-?\d+)\s*$")


def snapshot(conn: psycopg.Connection[Any]) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table a script may touch, in a stable order."""
    result = {}
    with conn.cursor(row_factory=dict_row) as cur:
        for table in SNAPSHOT_TABLES:
            schema, name = table.split(".")
            cur.execute(sql.SQL("select * from {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))
            result[table] = sorted(cur.fetchall(), key=repr)
    return result


def summary_counts(table_output: str) -> dict[str, int]:
    """The counts of the summary table (printed last, after its title line)."""
    _, _, summary = table_output.rpartition("Summary of ")
    counts = {}
    for line in summary.splitlines()[1:]:
        match = SUMMARY_ROW.match(line)
        if match:
            counts[match[1]] = int(match[2])
    return counts


@dataclass
class Result:
    """One script run."""

    code: int
    out: str
    err: str

    @property
    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.out)
        return document

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = self.json["counts"]
        return counts


Runner = Callable[..., Result]


@pytest.fixture
def run_script(capsys: pytest.CaptureFixture[str], db_dsn: str) -> Runner:
    """`run_script(main, *args)` runs a script against this test's database and captures its output."""

    def run(main: Callable[[list[str]], int], *args: str) -> Result:
        capsys.readouterr()
        code = main(["--database-url", db_dsn, "--no-progress", *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@dataclass
class Scene:
    """One user with a voice, for seeding attempts in any state."""

    conn: psycopg.Connection[Any]
    owner: uuid.UUID

    def reflection(self) -> uuid.UUID:
        return seed_reflection(self.conn, self.owner)

    def voice(self) -> uuid.UUID:
        return seed_voice(self.conn, self.owner)

    def attempt(
        self, *, provider: str = "local", reflection: bool = True, voice: uuid.UUID | None = None
    ) -> dict[str, Any]:
        """A new queued attempt (its insert trigger enqueues a message) on a new reflection."""
        return one(
            self.conn,
            "insert into voice_clone_attempts (owner_id, voice_id, reflection_id, provider, source)"
            " values (%s, %s, %s, %s, 'sample_upload') returning *",
            (self.owner, voice or self.voice(), self.reflection() if reflection else None, provider),
        )

    def move(self, attempt: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """One transition of `attempt` (as a worker would)."""
        return transition(self.conn, attempt["id"], attempt["version"], **kwargs)

    def claimed(self, *, lease_seconds: int = 60, **kwargs: Any) -> dict[str, Any]:
        """An attempt a worker claimed (processing, leased)."""
        attempt = self.attempt(**kwargs)
        return self.move(
            attempt, status="processing", changes={"lease_owner": "worker-1", "lease_seconds": lease_seconds}
        )

    def ready(self, *, provider_voice_id: str, target_model: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """An attempt that went all the way to ready with a provider voice."""
        attempt = self.claimed(**kwargs)
        attempt = self.move(
            attempt,
            status="verifying",
            lease_owner="worker-1",
            changes={
                "enrolment_key": f"vg-{attempt['id']}",
                "provider_voice_id": provider_voice_id,
                "provider_target_model": target_model,
            },
        )
        return self.move(attempt, status="ready", lease_owner="worker-1")

    def expire_lease(self, attempt: dict[str, Any], ago: timedelta) -> None:
        """Make a held lease look as if its worker stopped renewing it `ago` (seeding only)."""
        self.conn.execute(
            "update voice_clone_attempts set lease_expires_at = now() - %s where id = %s", (ago, attempt["id"])
        )

    def drop_messages(self, attempt: dict[str, Any]) -> None:
        """Remove the attempt's queue messages, as if a consumer had archived them (seeding only)."""
        self.conn.execute(
            "delete from pgmq.q_voice_clone_process where message->>'attemptId' = %s", (str(attempt["id"]),)
        )

    def age(self, attempt: dict[str, Any], ago: timedelta) -> None:
        """Backdate an attempt's last change (seeding only)."""
        self.conn.execute("update voice_clone_attempts set updated_at = now() - %s where id = %s", (ago, attempt["id"]))

    def row(self, attempt_id: uuid.UUID) -> dict[str, Any]:
        return one(self.conn, "select * from voice_clone_attempts where id = %s", (attempt_id,))


@pytest.fixture
def scene(db: psycopg.Connection[Any]) -> Scene:
    """A user on this test's database."""
    return Scene(db, create_user(db))


def audit_events(conn: psycopg.Connection[Any], action: str | None = None) -> list[dict[str, Any]]:
    """The audit trail, oldest first (optionally one action only)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select * from voicegate.audit_events where %(action)s::text is null or action = %(action)s order by id",
            {"action": action},
        )
        return cur.fetchall()


@dataclass
class Fakes:
    """The remote providers' fakes, with helpers that put voices straight into their accounts."""

    qwen: QwenFake
    eleven: ElevenLabsFake
    cartesia: CartesiaFake

    def voice_ids(self) -> dict[str, set[str]]:
        return {
            "qwen": set(self.qwen.voices),
            "elevenlabs": set(self.eleven.voices),
            "cartesia": set(self.cartesia.voices),
        }

    def qwen_voice(self, key: str, *, model: str = PINNED) -> str:
        voice_id = f"qwen-tts-vc-{preferred_name(key)}-voice-20261121000000000-ab12"
        self.qwen.voices[voice_id] = QwenVoice(voice_id, model, "en", datetime.now(UTC), "data:")
        return voice_id

    def cartesia_voice(self, key: str, *, age: timedelta) -> str:
        voice_id = str(uuid.uuid4())
        made = (datetime.now(UTC) - age).isoformat().replace("+00:00", "Z")
        description = f"voicegate voice {key_marker(key)}"
        self.cartesia.voices[voice_id] = CartesiaVoice(voice_id, "Ada", description, "en", created_at=made)
        return voice_id

    def foreign_eleven_voice(self) -> str:
        self.eleven.voices["HumanMadeVoice000001"] = ElevenVoice("HumanMadeVoice000001", "Mine", None, {}, [])
        return "HumanMadeVoice000001"


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    """The three remote providers' fakes, configured as this process's providers."""
    qwen, eleven, cartesia = QwenFake(QWEN_KEY), ElevenLabsFake(ELEVEN_KEY), CartesiaFake(CARTESIA_KEY)
    with serve(qwen) as qwen_url, serve(eleven) as eleven_url, serve(cartesia) as cartesia_url:
        for name, value in {
            "DASHSCOPE_API_KEY": QWEN_KEY,
            "DASHSCOPE_BASE_URL": qwen_url,
            "ELEVENLABS_API_KEY": ELEVEN_KEY,
            "ELEVENLABS_BASE_URL": eleven_url,
            "CARTESIA_API_KEY": CARTESIA_KEY,
            "CARTESIA_BASE_URL": cartesia_url,
        }.items():
            monkeypatch.setenv(name, value)
        yield Fakes(qwen, eleven, cartesia)
