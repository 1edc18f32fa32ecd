"""The queues the code names (`backend.queues`) are exactly the queues the migrations create."""

from __future__ import annotations

import psycopg

from backend import queues


def test_backend_queues_are_the_migrated_queues(module_db: psycopg.Connection[tuple[object, ...]]) -> None:
    migrated = {row[0] for row in module_db.execute("select queue_name from pgmq.list_queues()")}
    assert migrated == set(queues.ALL)
    assert set(queues.WORK_QUEUES) == set(queues.ALL) - {queues.DEAD_LETTER}
