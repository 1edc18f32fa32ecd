"""Helpers for tests that talk to the database directly, as PostgREST would."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import psycopg.conninfo
from psycopg import sql
from psycopg.rows import dict_row

from devkit.db import Conn, create_user, one, postgres_pids, seed_consent

#: Tables that keep an erased user's id by design: the erasure itself, which outlives them.
ERASURE_TABLES = {"voicegate.erasures"}


def rows_naming(conn: Conn, user: uuid.UUID) -> dict[str, int]:
    """Every table of voicegate's schemas and pgmq's (and Storage's and Auth's) with a row whose text names the user,
    and how many; the tables that have an owner id are counted by it too."""
    found: dict[str, int] = {}
    tables = conn.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_schema in ('public', 'voicegate', 'pgmq', 'storage', 'auth') and table_type = 'BASE TABLE'"
    ).fetchall()
    for schema, table in tables:
        if f"{schema}.{table}" in ERASURE_TABLES:
            continue
        query = sql.SQL("select count(*) from {}.{} t where t::text like %s").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        n = conn.execute(query, (f"%{user}%",)).fetchone()
        if n and n[0]:
            found[f"{schema}.{table}"] = n[0]
    owned = conn.execute(
        "select table_schema, table_name from information_schema.columns"
        " where column_name = 'owner_id' and table_schema in ('public', 'voicegate')"
    ).fetchall()
    for schema, table in owned:
        query = sql.SQL("select count(*) from {}.{} where owner_id = %s").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        n = conn.execute(query, (user,)).fetchone()
        if n and n[0]:
            found[f"{schema}.{table} (owner_id)"] = n[0]
    return found


def stored_files(root: Path, user: uuid.UUID) -> list[Path]:
    """Files the Storage stand-in keeps whose path names the user (it leaves a removed file's folders, empty)."""
    return [path for path in root.rglob("*") if path.is_file() and str(user) in str(path)]


def database_url(dsn: str) -> str:
    """A test server's DSN (trusted, no password) as the URL `DATABASE_URL` wants: over its Unix socket (a
    host that is a directory) or loopback TCP."""
    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    user, host, port, dbname = parts["user"], str(parts["host"]), parts["port"], parts["dbname"]
    if host.startswith("/"):
        return f"postgresql://{user}@/{dbname}?host={quote(host, safe='')}&port={port}"
    return f"postgresql://{user}@{host}:{port}/{dbname}"


@contextmanager
def acting_as(conn: Conn, role: str, user_id: uuid.UUID | None = None) -> Iterator[Conn]:
    """Run the block in a transaction as `role` with the user's JWT claims; always rolled back."""
    claims: dict[str, Any] = {"role": role}
    if user_id is not None:
        claims |= {"sub": str(user_id), "aud": "authenticated"}
    with conn.transaction(force_rollback=True):
        conn.execute(
            "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
            (role, json.dumps(claims)),
        )
        yield conn


def seed_voice(conn: Conn, owner: uuid.UUID, name: str | None = None) -> uuid.UUID:
    """A draft voice owned by `owner`, by default under a name of its own (an owner's voices each have one)."""
    name = name or f"My voice {uuid.uuid4().hex[:8]}"
    return one(conn, "insert into voices (owner_id, name) values (%s, %s) returning id", (owner, name))["id"]


def seed_attempt(
    conn: Conn,
    owner: uuid.UUID,
    voice_id: uuid.UUID,
    reflection_id: uuid.UUID | None,
    *,
    preview_required: bool = True,
    source: str = "sample_upload",
) -> dict[str, Any]:
    """Insert an attempt as plain SQL (any producer may) and return the row."""
    return one(
        conn,
        "insert into voice_clone_attempts (owner_id, voice_id, reflection_id, provider, source, preview_required)"
        " values (%s, %s, %s, 'local', %s, %s) returning *",
        (owner, voice_id, reflection_id, source, preview_required),
    )


def transition(
    conn: Conn,
    attempt_id: uuid.UUID,
    version: int,
    *,
    status: str | None = None,
    runtime: str | None = None,
    preview: str | None = None,
    lease_owner: str | None = None,
    changes: dict[str, Any] | None = None,
    actor: str = "test",
) -> dict[str, Any]:
    """Call voicegate.transition_attempt and return the new attempt row."""
    return one(
        conn,
        "select * from voicegate.transition_attempt(%s, %s, %s, %s, %s, %s, %s, %s)",
        (attempt_id, version, actor, status, runtime, preview, lease_owner, json.dumps(changes or {})),
    )


def mirror(conn: Conn, reflection_id: uuid.UUID) -> dict[str, Any]:
    """The reflection's `voice` mirror."""
    value = one(conn, "select voice from reflections where id = %s", (reflection_id,))["voice"]
    assert isinstance(value, dict)
    return value


def queue_messages(conn: Conn, queue: str) -> list[dict[str, Any]]:
    """Every message currently in `queue` (visible or not), oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            psycopg.sql.SQL("select msg_id, message from pgmq.{} order by msg_id").format(
                psycopg.sql.Identifier(f"q_{queue}")
            )
        )
        return cur.fetchall()


@contextmanager
def frozen(data_dir: Path) -> Iterator[None]:
    """SIGSTOP every process of the cluster in `data_dir` for the block (a hung database), SIGCONT after.

    The postmaster stops first and its children are listed after it has: a backend forked while the list was read
    would otherwise go on answering through the "hang" (CI: a pool connection opened as the freeze began served
    every request of it)."""
    [postmaster, *_] = postgres_pids(data_dir)
    stopped = [postmaster]
    os.kill(postmaster, signal.SIGSTOP)
    try:
        _wait_stopped(postmaster)
        while fresh := [pid for pid in postgres_pids(data_dir) if pid not in stopped]:
            for pid in fresh:
                stopped.append(pid)  # before it is stopped: whatever happens next, it is resumed
                with contextlib.suppress(ProcessLookupError):  # a backend that ended since it was listed
                    os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def _wait_stopped(pid: int) -> None:
    """Return once `pid` is stopped (state T in /proc): SIGSTOP is delivered asynchronously, and a fork under way
    as it was sent completes first."""
    give_up = time.monotonic() + 5
    while Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "T":
        assert time.monotonic() < give_up, f"process {pid} did not stop"
        time.sleep(0.001)


@contextmanager
def busy_backend(dsn: str, seconds: int) -> Iterator[int]:
    """A backend of the server at `dsn` busy for `seconds` with a query that never waits (a loop in
    PL/pgSQL), for the block; yields its pid once it runs. A backend notices its postmaster's death only
    when it waits, so this one outlives a killed postmaster by up to `seconds`, holding the dead server's
    shared memory as a backend in the middle of a long query would."""
    conn = psycopg.connect(dsn, autocommit=True)
    backend = conn.info.backend_pid
    loop = sql.SQL("do $$ begin while clock_timestamp() < statement_timestamp() + {} loop end loop; end $$").format(
        sql.Literal(timedelta(seconds=seconds))
    )

    def run() -> None:
        with contextlib.suppress(psycopg.Error):  # its server may be gone by the time it answers
            conn.execute(loop)

    thread = threading.Thread(target=run, name="busy-backend")
    thread.start()
    try:
        with psycopg.connect(dsn, autocommit=True) as observer:
            # Polled: nothing tells another session when a statement has begun.
            query = "select state = 'active' from pg_stat_activity where pid = %s"
            while not (row := observer.execute(query, (backend,)).fetchone()) or not row[0]:
                assert thread.is_alive(), "the busy query ended before it was seen running"
                time.sleep(0.01)
        yield backend
    finally:
        thread.join()
        conn.close()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that takes connections and never answers a byte (a hung server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # never accepted: the kernel completes the handshakes, nobody reads
        yield int(listener.getsockname()[1])


#: A `local` voice's measured profile, as the provider stores it.
LOCAL_PROFILE = {"median_f0_hz": 120.0, "f0_sd_semitones": 2.0, "syllable_rate_hz": 4.0, "envelope_db": [0.0] * 24}


def local_attempt(db: Conn) -> dict[str, Any]:
    """A voice and its queued `custom_voice_id` attempt naming a voice the `local` provider has."""
    owner = create_user(db)
    local_voice = f"local-{uuid.uuid4().hex[:12]}"
    db.execute(
        "insert into voicegate.local_voices (voice_id, name, language, enrolment_key, profile)"
        " values (%s, 'v', 'en', %s, %s::jsonb)",
        (local_voice, f"key-{local_voice}", json.dumps(LOCAL_PROFILE)),
    )
    voice = one(
        db,
        "insert into voices (owner_id, name, tts_provider, consent_id) values (%s, 'v', 'local', %s) returning *",
        (owner, seed_consent(db, owner, "2026-11")),
    )
    attempt = one(
        db,
        "insert into voice_clone_attempts (owner_id, voice_id, provider, source, preview_required, provider_voice_id)"
        " values (%s, %s, 'local', 'custom_voice_id', false, %s) returning id",
        (owner, voice["id"], local_voice),
    )
    return {**voice, "attempt_id": attempt["id"], "local_voice": local_voice}


#: The provider voice ids, which two voices cannot share: compared as the same placeholder.
MASKED = {"provider_voice_id", "providerVoiceId"}


def masked(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the provider voice ids replaced by one placeholder."""
    return {k: "pv" if k in MASKED else v for k, v in values.items()}


def attempt_outcome(conn: Conn, attempt: dict[str, Any], voice: uuid.UUID, reflection: uuid.UUID) -> dict[str, Any]:
    """Everything an attempt's moves leave behind, without the ids and times that differ between two attempts."""
    attempt_id = attempt["id"]
    row = one(conn, "select * from voice_clone_attempts where id = %s", (attempt_id,))
    events = conn.execute(
        "select dimension, from_state, to_state, actor, detail from voice_clone_attempt_events"
        " where attempt_id = %s order by id",
        (attempt_id,),
    ).fetchall()
    webhooks = [
        {k: v for k, v in m["message"].items() if k not in {"webhookId", "timestamp", "data"}}
        | {"data": {k: v for k, v in m["message"]["data"].items() if not k.endswith("Id")}}
        for m in queue_messages(conn, "webhook_delivery")
        if m["message"]["data"].get("attemptId") == str(attempt_id)
    ]
    previews = [
        {**m["message"], "attemptId": "the attempt"}
        for m in queue_messages(conn, "voice_preview")
        if m["message"]["attemptId"] == str(attempt_id)
    ]
    volatile = {
        "id",
        "owner_id",
        "voice_id",
        "reflection_id",
        "created_at",
        "updated_at",
        "finished_at",
        "enrolment_key",
    }
    return {
        "row": masked({k: v for k, v in row.items() if k not in volatile}),
        "returned_version": attempt["version"],
        "finished": row["finished_at"] is not None,
        "events": events,
        "mirror": masked(
            {k: v for k, v in mirror(conn, reflection).items() if k not in {"attemptId", "voiceId", "updatedAt"}}
        ),
        "voice": masked(
            one(
                conn,
                "select status, tts_provider, provider_voice_id, provider_target_model, provider_metadata"
                " from voices where id = %s",
                (voice,),
            )
        ),
        "references": conn.execute(
            "select provider, target_model, reason from voice_provider_references where attempt_id = %s",
            (attempt_id,),
        ).fetchall(),
        "webhooks": webhooks,
        "previews": previews,
    }
