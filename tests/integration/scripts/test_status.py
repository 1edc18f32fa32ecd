"""status: queue depths, attempts by state, dead letters and stale leases; problems mean exit 1.
Also the entry points: `python -m scripts.status` and `voicegate ops status`."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from scripts.status import main
from tests.integration.scripts.conftest import Runner, Scene, snapshot, summary_counts
from voicegate.cli import main as voicegate

ROOT = Path(__file__).resolve().parents[3]


def seed(scene: Scene) -> None:
    stale = scene.claimed()
    scene.expire_lease(stale, timedelta(minutes=5))
    scene.claimed()
    scene.move(scene.attempt(), status="canceled")
    scene.conn.execute("select pgmq.send('voice_dead_letter', '{\"sourceQueue\": \"voice_preview\"}'::jsonb)")


def test_counts_attempts_queues_dead_letters_and_stale_leases(
    run_script: Runner, scene: Scene, db: psycopg.Connection[Any]
) -> None:
    seed(scene)
    before = snapshot(db)

    result = run_script(main, "--json")

    assert result.code == 1
    counts = result.counts
    assert (counts["attempts.processing"], counts["attempts.canceled"], counts["attempts.total"]) == (2, 1, 3)
    assert (counts["stale_leases"], counts["live_leases"], counts["dead_letters"]) == (1, 1, 1)
    assert counts["queue.voice_clone_process.depth"] == 3
    assert (counts["problems"], counts["unfixed"]) == (2, 2)
    queues = {item["queue"]: item for item in result.json["items"] if item.get("queue")}
    assert queues["voice_dead_letter"]["depth"] == 1
    assert queues["voice_clone_process"]["oldest_age_s"] >= 0
    assert snapshot(db) == before


def test_a_healthy_database_exits_zero_and_the_table_matches_the_json(run_script: Runner, scene: Scene) -> None:
    scene.claimed()

    table = run_script(main)
    document = run_script(main, "--json")

    assert table.code == document.code == 0
    assert summary_counts(table.out) == document.counts
    assert "voice_clone_process" in table.out


def test_status_has_no_apply(run_script: Runner) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_script(main, "--apply")
    assert exit_info.value.code == 2


def test_an_unreachable_database_exits_three_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--database-url", "postgresql://nobody@127.0.0.1:1/none", "--json"])

    captured = capsys.readouterr()
    assert code == 3
    assert "cannot connect to the database" in captured.err
    assert json.loads(captured.out)["exitCode"] == 3


def test_python_dash_m_runs_the_module(db_dsn: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.status", "--json", "--database-url", db_dsn],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["attempts.total"] == 0


def test_voicegate_ops_passes_its_arguments_through(
    db_dsn: str, scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(scene)

    code = voicegate(["ops", "status", "--json", "--database-url", db_dsn])

    assert code == 1
    assert json.loads(capsys.readouterr().out)["counts"]["dead_letters"] == 1


GROWING = {
    "pgmq.a_voice_clone_process",
    "pgmq.a_voice_sample_process",
    "pgmq.a_voice_preview",
    "pgmq.a_voice_synthesis",
    "pgmq.a_webhook_delivery",
    "pgmq.a_voice_dead_letter",
    "pgmq.a_user_erasure",
    "voicegate.audit_events",
    "public.voice_clone_attempt_events",
    "public.voice_clone_outbox",
    "public.speech_streams",
    "public.reflection_sessions",
    "public.synthesis_jobs",
    "voicegate.usage_events",
    "voicegate.idempotency_keys",
    "voicegate.queue_message_errors",
}


def test_each_growing_table_shows_its_rows_bytes_and_oldest_row(
    run_script: Runner, scene: Scene, db: psycopg.Connection[Any]
) -> None:
    msg_id = db.execute("select pgmq.send('voice_preview', '{}'::jsonb)").fetchone()[0]  # type: ignore[index]
    db.execute("select pgmq.archive('voice_preview', %s::bigint)", (msg_id,))
    db.execute("update pgmq.a_voice_preview set archived_at = '2026-01-02T03:04:05Z'")
    db.execute("analyze pgmq.a_voice_preview")

    result = run_script(main, "--json")

    tables = {item["table"]: item for item in result.json["items"] if item.get("table")}
    assert set(tables) >= GROWING
    preview = tables["pgmq.a_voice_preview"]
    assert (preview["rows"], preview["oldest"]) == (1, "2026-01-02T03:04:05+00:00")
    assert preview["bytes"] > 0
    assert result.counts["table.pgmq.a_voice_preview.bytes"] == preview["bytes"]
    assert tables["pgmq.a_voice_synthesis"]["oldest"] is None
    table = run_script(main)
    assert "pgmq.a_voice_preview" in table.out
    assert "public.speech_streams" in table.out
