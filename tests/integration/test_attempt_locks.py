"""What a clone attempt's transition locks: the attempt `for no key update`, so that a row referring to it (a
synthesis job, whose foreign key takes a key-share lock on the attempt) is inserted without waiting for the
transition to commit. With `for update` the two waited on each other whenever the transition went on to update
the voice the job's request held, until Postgres broke the deadlock."""

from __future__ import annotations

import psycopg

from devkit.db import create_user
from tests.support import seed_attempt, seed_voice, transition


def test_a_job_for_an_attempt_is_inserted_while_a_transition_of_it_is_open(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as setup:
        owner = create_user(setup)
        voice = seed_voice(setup, owner)
        attempt = seed_attempt(setup, owner, voice, None, preview_required=False)
    with psycopg.connect(db_dsn) as worker, psycopg.connect(db_dsn) as api:
        moved = transition(worker, attempt["id"], attempt["version"], status="canceled")
        assert moved["status"] == "canceled"  # and the worker's transaction stays open
        api.execute("set lock_timeout = '2s'")
        api.execute("select id from voices where id = %s for update", (voice,))
        api.execute(
            "insert into synthesis_jobs (owner_id, voice_id, attempt_id, input_text) values (%s, %s, %s, 'hi')",
            (owner, voice, attempt["id"]),
        )
        api.commit()
        worker.commit()
