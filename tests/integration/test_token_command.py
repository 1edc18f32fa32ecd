"""`voicegate token` on a stack with no Supabase project (compose): against `DATABASE_URL`, whose `auth` voicegate's
stand-ins made, it makes the user once and prints a token the API accepts for them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jwt
import psycopg

from standins.dev_tokens import mint_service_key
from tests.support import database_url

REPO = Path(__file__).resolve().parents[2]
JWT_SECRET = "token-command-secret-" + "x" * 40


def token(db_dsn: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DATABASE_URL": database_url(db_dsn),
        "SUPABASE_URL": "http://127.0.0.1:5000",
        "SUPABASE_JWT_SECRET": JWT_SECRET,
        "SUPABASE_SERVICE_ROLE_KEY": mint_service_key(JWT_SECRET),
    }
    return subprocess.run(
        [sys.executable, "-m", "voicegate.cli", "token", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_compose_stack_gets_a_users_token_from_voicegate_token(db_dsn: str, tmp_path: Path) -> None:
    first = token(db_dsn, tmp_path, "--user", "you@example.com")
    assert first.returncode == 0, first.stderr
    again = token(db_dsn, tmp_path, "--user", "you@example.com", "--ttl", "60")
    assert again.returncode == 0, again.stderr
    claims = [
        jwt.decode(done.stdout.strip(), JWT_SECRET, algorithms=["HS256"], audience="authenticated")
        for done in (first, again)
    ]
    assert claims[0]["sub"] == claims[1]["sub"]
    assert claims[0]["email"] == "you@example.com"
    assert claims[1]["exp"] - claims[1]["iat"] == 60
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute("select id::text from auth.users where email = 'you@example.com'").fetchall()
    assert rows == [(claims[0]["sub"],)]


def test_an_unknown_user_id_is_refused_in_one_line(db_dsn: str, tmp_path: Path) -> None:
    done = token(db_dsn, tmp_path, "--user", "00000000-0000-0000-0000-000000000001")
    assert done.returncode != 0
    assert "no user 00000000-0000-0000-0000-000000000001 in auth.users" in done.stderr
