"""usage: each user's characters, audio seconds and calls per provider over a period, from the usage ledger, as a
table, one JSON document or CSV rows; it changes nothing. Also the entry point `voicegate ops usage`."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import psycopg

from devkit.db import create_user
from scripts.usage import main
from tests.integration.scripts.conftest import Runner, snapshot, summary_counts
from voicegate.cli import main as voicegate

Db = psycopg.Connection[Any]


def spent(db: Db, owner: uuid.UUID, provider: str, characters: int, seconds: float, days_ago: float = 0) -> None:
    db.execute(
        "insert into voicegate.usage_events (owner_id, provider, kind, work_id, call_key, characters,"
        " audio_seconds, at) values (%s, %s, 'job', %s, '0', %s, %s, now() - make_interval(secs => %s))",
        (owner, provider, uuid.uuid4(), characters, seconds, days_ago * 86400),
    )


def seed(db: Db) -> tuple[uuid.UUID, uuid.UUID]:
    alice, bob = create_user(db), create_user(db)
    spent(db, alice, "elevenlabs", 100, 6.0)
    spent(db, alice, "elevenlabs", 50, 3.0)
    spent(db, alice, "local", 20, 1.5)
    spent(db, bob, "elevenlabs", 7, 0.5)
    spent(db, bob, "elevenlabs", 9000, 600.0, days_ago=3)  # before the default day
    return alice, bob


def test_reports_each_user_and_provider_over_the_last_day_and_changes_nothing(run_script: Runner, db: Db) -> None:
    alice, bob = seed(db)
    before = snapshot(db)

    result = run_script(main, "--json")

    assert result.code == 0, result.err
    items = {(item["owner_id"], item["provider"]): item for item in result.json["items"]}
    email = db.execute("select email from auth.users where id = %s", (alice,)).fetchone()
    assert email is not None
    assert items[str(alice), "elevenlabs"] == {
        "email": email[0],
        "owner_id": str(alice),
        "provider": "elevenlabs",
        "characters": 150,
        "audio_seconds": 9.0,
        "calls": 2,
    }
    assert items[str(alice), "local"]["characters"] == 20
    assert items[str(bob), "elevenlabs"]["characters"] == 7
    assert result.counts == {"users": 2, "characters": 177, "audio_seconds": 11, "calls": 4}
    assert snapshot(db) == before

    week = run_script(main, "--json", "--days", "7")
    assert week.counts["characters"] == 177 + 9000


def test_a_period_csv_and_the_table_agree_with_the_json(run_script: Runner, db: Db) -> None:
    seed(db)
    period = ("--since", "2000-01-01", "--until", "2999-01-01")

    document = run_script(main, "--json", *period)
    table = run_script(main, *period)
    rows = run_script(main, "--csv", *period)

    assert document.code == table.code == rows.code == 0
    assert summary_counts(table.out) == document.counts
    parsed = list(csv.DictReader(io.StringIO(rows.out)))
    assert [dict(row) for row in parsed] == [
        {key: str(value) for key, value in item.items()} for item in document.json["items"]
    ]
    assert rows.err.startswith("note: period: 2000-01-01T00:00:00+00:00")


def test_arguments_that_cannot_go_together_are_a_usage_error(run_script: Runner) -> None:
    for args in (("--days", "1", "--since", "2026-01-01"), ("--json", "--csv"), ("--days", "0")):
        try:
            code = run_script(main, *args).code
        except SystemExit as exit_:
            code = exit_.code
        assert code == 2, args
    empty = run_script(main, "--since", "2026-02-01", "--until", "2026-01-01")
    assert empty.code == 2


def test_voicegate_ops_runs_it(run_script: Runner, db_dsn: str, capsys: Any) -> None:
    code = voicegate(["ops", "usage", "--database-url", db_dsn, "--no-progress", "--json"])
    assert code == 0
    assert '"script":"usage"' in capsys.readouterr().out


def test_a_period_reaching_past_the_ledgers_retention_says_so(run_script: Runner, db: Db) -> None:
    seed(db)

    within = run_script(main, "--json", "--days", "399")
    beyond = run_script(main, "--json", "--days", "401")

    assert not any("VOICEGATE_USAGE_RETENTION_DAYS" in note for note in within.json["notes"])
    assert any("the ledger keeps 400 days (VOICEGATE_USAGE_RETENTION_DAYS)" in note for note in beyond.json["notes"])
    assert beyond.counts == within.counts
