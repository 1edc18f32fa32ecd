"""The queues the code names (`backend.queues`) are exactly the queues the migrations create, its work queues those
the database lists, which the worker scaler counts."""

from __future__ import annotations

from pathlib import Path

import psycopg
import yaml

from backend import queues

KEDA = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "keda.yaml"


def test_backend_queues_are_the_migrated_queues(module_db: psycopg.Connection[tuple[object, ...]]) -> None:
    migrated = {row[0] for row in module_db.execute("select queue_name from pgmq.list_queues()")}
    assert migrated == set(queues.ALL)
    assert set(queues.WORK_QUEUES) == set(queues.ALL) - {queues.DEAD_LETTER}


def test_the_work_queues_are_listed_in_the_database(module_db: psycopg.Connection[tuple[object, ...]]) -> None:
    listed = {row[0] for row in module_db.execute("select queue_name from voicegate.work_queues")}
    assert listed == set(queues.WORK_QUEUES)


def test_the_worker_scaler_counts_the_work_queues_messages_and_no_others(
    module_db: psycopg.Connection[tuple[object, ...]],
) -> None:
    # The query KEDA runs (deploy/k8s/keda.yaml), against messages in every queue, the dead letters' and a queue
    # of the project's own among them.
    [scaled] = [doc for doc in yaml.safe_load_all(KEDA.read_text()) if doc["kind"] == "ScaledObject"]
    query = scaled["spec"]["triggers"][0]["metadata"]["query"]
    with module_db.transaction(force_rollback=True):
        module_db.execute("select pgmq.create('the_projects_own')")
        for queue in (*queues.ALL, "the_projects_own"):
            module_db.execute("select pgmq.send(%s, '{}'::jsonb)", (queue,))
            module_db.execute("select pgmq.send(%s, '{}'::jsonb)", (queue,))
        before = module_db.execute(query).fetchone()
        module_db.execute("select pgmq.send(%s, '{}'::jsonb)", (queues.CLONE,))
        after = module_db.execute(query).fetchone()
    assert before is not None
    assert after is not None
    assert (before[0], after[0]) == (2 * len(queues.WORK_QUEUES), 2 * len(queues.WORK_QUEUES) + 1)
