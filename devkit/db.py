"""The database of a local voicegate as the tests and the benchmarks reach it directly: rows written as a
client of Supabase would (as PostgREST would, with no API in between), and the processes of the cluster."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

Conn = psycopg.Connection[Any]


def create_user(conn: Conn, email: str | None = None) -> uuid.UUID:
    """Insert an `auth.users` row (as Supabase Auth would on sign-up) and return its id."""
    user_id = uuid.uuid4()
    conn.execute(
        "insert into auth.users (id, email) values (%s, %s)",
        (user_id, email or f"{user_id.hex[:8]}@example.test"),
    )
    return user_id


def one(conn: Conn, query: str, params: Any = None) -> dict[str, Any]:
    """Run `query` and return its single row as a dict."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        row = cur.fetchone()
    if row is None:
        raise AssertionError(f"no row from {query!r}")
    return row


def seed_consent(conn: Conn, owner: uuid.UUID, text_version: str = "v1") -> uuid.UUID:
    """A consent record of `owner`."""
    consent: uuid.UUID = one(
        conn,
        "insert into voice_consents (owner_id, subject_name, consent_text_version) values (%s, 'Ada', %s) returning id",
        (owner, text_version),
    )["id"]
    return consent


def seed_reflection(conn: Conn, owner: uuid.UUID, name: str = "My reflection") -> uuid.UUID:
    """A reflection owned by `owner`."""
    reflection: uuid.UUID = one(
        conn, "insert into reflections (owner_id, name) values (%s, %s) returning id", (owner, name)
    )["id"]
    return reflection


def postmaster_pid(data_dir: Path) -> int:
    """The pid in a cluster's postmaster.pid."""
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def postgres_pids(data_dir: Path) -> list[int]:
    """The postmaster of the cluster in `data_dir` and every process it forked (backends and background
    workers are its direct children)."""
    postmaster = postmaster_pid(data_dir)
    children = []
    for entry in Path("/proc").iterdir():
        try:
            # Field 4 of /proc/<pid>/stat is the parent pid; the name before it is in parentheses.
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == postmaster:
            children.append(int(entry.name))
    return [postmaster, *children]
