"""The functions that queue a message by inserting into its queue's table (no dynamic SQL per message, as
pgmq.send's) leave the row pgmq.send would, on PostgreSQL 18 and 15 with the pgmq the migrations install;
and a settling attempt wakes the consumers of the queues it sends a message to, and of no other."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from backend import queues
from devkit.db import Conn, create_user, one
from tests.support import queue_messages, seed_attempt, seed_voice, transition

#: An insert into a queue's table in a function's source, and what it gives `vt`.
_DIRECT_INSERT = re.compile(r"insert into pgmq\.q_(\w+)\b(.{0,60})", re.DOTALL)
#: One row, visible at once, as pgmq.send inserts it (never INSERT … SELECT: the queue's statement trigger
#: wakes its consumers even when that inserts no row).
_AS_SEND = re.compile(r" \(vt, message\)\s+values \(clock_timestamp\(\),\s")

#: What the hot path inserts directly (migration 20261125145000): every other queue goes through pgmq.send.
INSERTED_DIRECTLY = {queues.CLONE, queues.PREVIEW, queues.SYNTHESIS, queues.WEBHOOK}


def _direct_inserts(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, set[str]]:
    """Queue → the functions (in the migrations' schemas) that insert into its table, each insert checked
    to fill `vt` and `message` only, `vt` with the time now."""
    found: dict[str, set[str]] = {}
    rows = conn.execute(
        "select p.proname, p.prosrc from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname in ('public', 'voicegate')"
    ).fetchall()
    for name, source in rows:
        for queue, rest in _DIRECT_INSERT.findall(str(source)):
            assert _AS_SEND.match(rest), f"{name} inserts into pgmq.q_{queue} otherwise than pgmq.send: {rest!r}"
            found.setdefault(queue, set()).add(str(name))
    return found


def test_the_hot_path_inserts_into_four_queues_as_pgmq_send_would(
    module_db: psycopg.Connection[tuple[object, ...]],
) -> None:
    found = _direct_inserts(module_db)
    assert set(found) == INSERTED_DIRECTLY
    assert found[queues.CLONE] == {"after_attempt_insert"}
    assert found[queues.WEBHOOK] == {"emit_webhook"}


@pytest.mark.parametrize("queue", sorted(INSERTED_DIRECTLY))
def test_only_vt_and_message_lack_a_default_in_a_directly_inserted_queue(any_db_dsn: str, queue: str) -> None:
    # A pgmq release that added a column without a default would make the direct inserts fail (or write what
    # pgmq.send would not): this names it.
    with psycopg.connect(any_db_dsn, autocommit=True) as conn:
        columns = conn.execute(
            "select column_name, column_default is not null or is_identity = 'YES' or is_nullable = 'YES'"
            " from information_schema.columns where table_schema = 'pgmq' and table_name = %s",
            (f"q_{queue}",),
        ).fetchall()
    defaults: dict[str, bool] = {str(name): bool(filled) for name, filled in columns}
    assert {"msg_id", "read_ct", "enqueued_at", "vt", "message"} <= set(defaults)
    assert [name for name, filled in defaults.items() if not filled and name not in {"vt", "message"}] == []


@pytest.mark.parametrize("queue", sorted(INSERTED_DIRECTLY))
def test_a_message_inserted_directly_reads_back_as_one_sent_with_pgmq_send(any_db_dsn: str, queue: str) -> None:
    message = {"type": "PROBE", "n": 1, "nested": {"a": [1, 2]}}
    with psycopg.connect(any_db_dsn, autocommit=True, row_factory=dict_row) as conn:
        sent = conn.execute("select pgmq.send(%s, %s::jsonb) as id", (queue, Jsonb(message)))
        sent_id = sent.fetchone()["id"]  # type: ignore[index]
        inserted = conn.execute(
            sql.SQL("insert into pgmq.{} (vt, message) values (clock_timestamp(), %s) returning msg_id").format(
                sql.Identifier(f"q_{queue}")
            ),
            (Jsonb(message),),
        )
        inserted_id = inserted.fetchone()["msg_id"]  # type: ignore[index]
        read = {row.pop("msg_id"): row for row in conn.execute("select * from pgmq.read(%s, 30, 10)", (queue,))}
    assert set(read) == {sent_id, inserted_id}
    assert inserted_id > sent_id
    by_send, by_insert = read[sent_id], read[inserted_id]
    assert by_insert["message"] == by_send["message"] == message
    assert by_insert["read_ct"] == by_send["read_ct"] == 1
    assert by_insert.get("headers") == by_send.get("headers")
    assert by_insert["enqueued_at"] >= by_send["enqueued_at"]
    assert set(by_insert) == set(by_send)


_SENTINEL = "test_queue_inserts_done"


@contextmanager
def woken_queues(dsn: str) -> Iterator[set[str]]:
    """The queues whose insert notification (`pgmq.q_<queue>.INSERT`) the body's committed work sent: read
    once the body is done, up to a notification sent after it (delivered in commit order), so none is
    missed and no wait is guessed."""
    woken: set[str] = set()
    with psycopg.connect(dsn, autocommit=True) as listener:
        for queue in queues.ALL:
            listener.execute(sql.SQL("listen {}").format(sql.Identifier(f"pgmq.q_{queue}.INSERT")))
        listener.execute(sql.SQL("listen {}").format(sql.Identifier(_SENTINEL)))
        yield woken
        with psycopg.connect(dsn, autocommit=True) as marker:
            marker.execute(sql.SQL("notify {}").format(sql.Identifier(_SENTINEL)))
        for note in listener.notifies(timeout=10):
            if note.channel == _SENTINEL:
                break
            woken.add(note.channel.removeprefix("pgmq.q_").removesuffix(".INSERT"))
        else:
            raise AssertionError("the sentinel notification did not arrive within 10 s")


def _leased_attempt(db: Conn) -> tuple[uuid.UUID, dict[str, object]]:
    """A fresh user's attempt without a preview, leased to worker `w`: its owner and row."""
    owner = create_user(db)
    attempt = seed_attempt(db, owner, seed_voice(db, owner), None, preview_required=False)
    lease = {"lease_owner": "w", "lease_seconds": 60}
    return owner, transition(db, attempt["id"], attempt["version"], status="processing", changes=lease)


def _complete(db: Conn, attempt_id: object) -> None:
    one(
        db,
        "select id from voicegate.complete_attempt(%s, 'worker:w', 'w', %s)",
        (attempt_id, json.dumps({"provider_voice_id": "pv-1"})),
    )


@pytest.mark.parametrize("project_endpoint", [False, True])
def test_an_attempt_that_settles_with_nobody_to_tell_wakes_no_queue(db_dsn: str, project_endpoint: bool) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as db:
        db.execute("update voicegate.project_webhook set configured = %s", (project_endpoint,))
        _, attempt = _leased_attempt(db)
        with woken_queues(db_dsn) as woken:
            _complete(db, attempt["id"])
    # No synthesis job waits for it and its owner has no endpoint: only the project's endpoint, if any.
    assert woken == ({queues.WEBHOOK} if project_endpoint else set())


def test_an_attempt_that_settles_wakes_the_queues_it_puts_messages_on(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as db:
        db.execute("update voicegate.project_webhook set configured = false")
        owner, attempt = _leased_attempt(db)
        db.execute(
            "insert into synthesis_jobs (owner_id, voice_id, attempt_id, input_text) values (%s, %s, %s, 'hi')",
            (owner, attempt["voice_id"], attempt["id"]),
        )
        db.execute(
            "insert into webhook_endpoints (owner_id, url, events) values (%s, 'https://hooks.example.com/x', %s)",
            (owner, ["voice.ready"]),
        )
        with woken_queues(db_dsn) as woken:
            _complete(db, attempt["id"])
        sent = [
            message["message"] for queue in (queues.SYNTHESIS, queues.WEBHOOK) for message in queue_messages(db, queue)
        ]
    assert woken == {queues.SYNTHESIS, queues.WEBHOOK}
    assert [sorted(message) for message in sent] == [
        ["jobId"],
        ["data", "endpointId", "timestamp", "type", "webhookId"],
    ]
