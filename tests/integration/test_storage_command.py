"""`voicegate storage`: the Storage stand-in as a process of its own on DATABASE_URL, which a stack with no
Supabase project (compose, Kubernetes) points its API's and workers' SUPABASE_URL at."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from backend.storage.client import SupabaseObjectStorage
from devkit.db import create_user
from devkit.up import tls_context, wait_for
from standins.dev_tokens import mint_service_key, mint_user_token
from standins.postgres import free_port
from tests.support import database_url

REPO = Path(__file__).resolve().parents[2]
JWT_SECRET = "storage-command-secret-" + "x" * 40
BUCKET = "voice-renders"


def storage_command(env: dict[str, str], data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """`voicegate storage` with only `env` (and PATH) as its environment, its output in `log`."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "voicegate.cli", "storage", "--data-dir", str(data_dir)],
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(data_dir.parent), **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log: Path


def answers_healthz(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2, verify=tls_context()).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def served(db_dsn: str, tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    env = {
        "DATABASE_URL": database_url(db_dsn),
        "SUPABASE_JWT_SECRET": JWT_SECRET,
        "SUPABASE_SERVICE_ROLE_KEY": mint_service_key(JWT_SECRET),
        "VOICEGATE_HOST": "127.0.0.1",
        "VOICEGATE_PORT": str(port),
    }
    log = tmp_path / "storage.log"
    process = storage_command(env, tmp_path / "data", log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers_healthz(url), 60, "/healthz of `voicegate storage`", process)
        yield Served(process, url, tmp_path / "data", log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def test_it_serves_the_stock_client_and_signed_urls_and_keeps_the_bytes_under_the_data_dir(
    served: Served, db_dsn: str
) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        owner = create_user(conn)
    path = f"{owner}/renders/job.wav"
    async with SupabaseObjectStorage(f"{served.url}/storage/v1", mint_service_key(JWT_SECRET)) as storage:
        await storage.upload(BUCKET, path, b"RIFF-ish bytes", "audio/wav")
        assert await storage.download(BUCKET, path) == b"RIFF-ish bytes"
        signed = await storage.create_signed_url(BUCKET, path, 60)
    # A signed URL points at this server and needs no credential, as a client downloads a render.
    assert signed.startswith(f"{served.url}/storage/v1/object/sign/{BUCKET}/")
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(signed)).content == b"RIFF-ish bytes"
        # A user's own token reads the object through RLS; nobody without a token does.
        headers = {"Authorization": f"Bearer {mint_user_token(JWT_SECRET, owner)}"}
        mine = await http.get(f"{served.url}/storage/v1/object/authenticated/{BUCKET}/{path}", headers=headers)
        assert mine.content == b"RIFF-ish bytes"
        anonymous = await http.get(f"{served.url}/storage/v1/object/authenticated/{BUCKET}/{path}")
        assert anonymous.status_code == 400
        assert anonymous.json()["code"] == "InvalidJWT"
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        row = conn.execute("select count(*) from storage.objects where bucket_id = %s and name = %s", (BUCKET, path))
        assert row.fetchone() == (1,)
    assert any(p.read_bytes() == b"RIFF-ish bytes" for p in (served.data_dir / "storage").rglob("*") if p.is_file())

    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(30) == 0, served.log.read_text(errors="replace")


def test_without_database_url_it_says_who_serves_storage_instead(tmp_path: Path) -> None:
    env = {"SUPABASE_JWT_SECRET": JWT_SECRET, "VOICEGATE_PORT": str(free_port())}
    process = storage_command(env, tmp_path / "data", tmp_path / "storage.log")
    assert process.wait(60) == 1
    said = (tmp_path / "storage.log").read_text()
    assert said.strip().splitlines() == [
        "voicegate: `voicegate storage` serves a stack on DATABASE_URL; without it, `voicegate up` and `serve`"
        " serve the Storage stand-in themselves"
    ]


def test_without_the_jwt_secret_it_cannot_sign_urls_and_does_not_start(db_dsn: str, tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": database_url(db_dsn),
        "SUPABASE_URL": "https://abcdefghijklmnop.supabase.co",
        "SUPABASE_SECRET_KEY": "sb_secret_" + "k" * 32,
        "VOICEGATE_PORT": str(free_port()),
    }
    process = storage_command(env, tmp_path / "data", tmp_path / "storage.log")
    assert process.wait(60) == 2
    assert (tmp_path / "storage.log").read_text().strip().splitlines() == [
        "voicegate: configuration error: the Storage stand-in signs its URL tokens with SUPABASE_JWT_SECRET: set it"
    ]
