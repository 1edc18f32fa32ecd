"""recover-stale-attempts: expired leases with nothing to redeliver them, and queued attempts with no
message, are requeued (or failed); live leases, recent and still-enqueued attempts are left alone."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from scripts.recover_stale_attempts import main
from tests.integration.scripts.conftest import Runner, Scene, audit_events, snapshot, summary_counts
from tests.support import queue_messages


def seed(scene: Scene) -> dict[str, dict[str, object]]:
    """Two stale attempts among healthy ones."""
    lost_lease = scene.claimed()
    scene.expire_lease(lost_lease, timedelta(minutes=1))
    scene.drop_messages(lost_lease)  # the consumer archived its message, then died
    orphan_queued = scene.attempt()
    scene.drop_messages(orphan_queued)
    scene.age(orphan_queued, timedelta(hours=1))
    healthy = {
        "live_lease": scene.claimed(),
        "fresh_expired_lease_with_message": scene.claimed(),
        "queued_with_message": scene.attempt(),
        "young_queued_without_message": scene.attempt(),
    }
    scene.expire_lease(healthy["fresh_expired_lease_with_message"], timedelta(seconds=5))
    scene.age(healthy["queued_with_message"], timedelta(hours=1))
    scene.drop_messages(healthy["young_queued_without_message"])
    return {"lost_lease": lost_lease, "orphan_queued": orphan_queued, **healthy}


def test_dry_run_finds_exactly_the_stale_attempts_and_changes_nothing(
    run_script: Runner, scene: Scene, db: psycopg.Connection[object]
) -> None:
    attempts = seed(scene)
    before = snapshot(db)

    result = run_script(main, "--json")

    assert result.code == 1
    found = {item["attempt_id"]: item for item in result.json["items"]}
    assert set(found) == {str(attempts["lost_lease"]["id"]), str(attempts["orphan_queued"]["id"])}
    assert found[str(attempts["lost_lease"]["id"])]["reason"] == "lease_expired"
    assert found[str(attempts["orphan_queued"]["id"])]["reason"] == "queued_without_message"
    assert {item["outcome"] for item in found.values()} == {"would requeue"}
    assert result.counts["problems"] == 2
    assert result.counts["unfixed"] == 2
    assert snapshot(db) == before


def test_apply_requeues_both_with_a_message_and_an_audit_event_then_finds_nothing(
    run_script: Runner, scene: Scene, db: psycopg.Connection[object]
) -> None:
    attempts = seed(scene)
    untouched = {name: attempts[name] for name in attempts if name not in {"lost_lease", "orphan_queued"}}

    result = run_script(main, "--apply", "--json")

    assert result.code == 0, result.out
    assert result.counts["requeued"] == 2
    assert result.counts["unfixed"] == 0
    lost = scene.row(attempts["lost_lease"]["id"])  # type: ignore[arg-type]
    assert (lost["status"], lost["lease_owner"], lost["retry_count"]) == ("queued", None, 1)
    assert lost["last_error_code"] == "lease_expired"
    queued = scene.row(attempts["orphan_queued"]["id"])  # type: ignore[arg-type]
    assert queued["status"] == "queued"
    assert queued["version"] == attempts["orphan_queued"]["version"] + 1  # type: ignore[operator]
    messages = queue_messages(db, "voice_clone_process")
    for attempt in (lost, queued):
        sent = [m["message"] for m in messages if m["message"]["attemptId"] == str(attempt["id"])]
        assert sent == [
            {
                "type": "VOICE_CLONE_PROCESS",
                "attemptId": str(attempt["id"]),
                "reflectionId": str(attempt["reflection_id"]),
                "version": attempt["version"],
            }
        ]
    events = audit_events(db)
    assert sorted((e["action"], e["subject_id"]) for e in events) == sorted(
        [("attempt.requeue", str(lost["id"])), ("attempt.requeue", str(queued["id"]))]
    )
    assert all(e["detail"]["run_id"] == result.json["runId"] for e in events)
    for attempt in untouched.values():
        assert scene.row(attempt["id"])["version"] == attempt["version"]  # type: ignore[arg-type]

    again = run_script(main, "--apply", "--json")

    assert again.code == 0
    assert again.counts["problems"] == 0
    assert len(audit_events(db)) == 2


def test_fail_gives_up_on_them_with_a_reason_the_user_can_read(
    run_script: Runner, scene: Scene, db: psycopg.Connection[object]
) -> None:
    attempts = seed(scene)

    result = run_script(main, "--apply", "--fail", "--json")

    assert result.code == 0
    assert result.counts["failed"] == 2
    for name in ("lost_lease", "orphan_queued"):
        row = scene.row(attempts[name]["id"])  # type: ignore[arg-type]
        assert (row["status"], row["last_error_code"]) == ("failed", "stale_attempt")
        assert "retry" in row["last_error_message"]
    assert {e["action"] for e in audit_events(db)} == {"attempt.fail"}
    assert queue_messages(db, "voice_clone_process") == queue_messages(db, "voice_clone_process")


def test_a_lease_out_of_retries_is_failed_not_requeued(run_script: Runner, scene: Scene) -> None:
    attempt = scene.claimed()
    scene.conn.execute("update voice_clone_attempts set max_retries = 0 where id = %s", (attempt["id"],))
    scene.expire_lease(attempt, timedelta(hours=1))

    result = run_script(main, "--apply", "--json")

    assert result.code == 0
    assert scene.row(attempt["id"])["last_error_code"] == "retries_exhausted"
    assert scene.row(attempt["id"])["status"] == "failed"


def test_table_and_json_carry_the_same_counts(run_script: Runner, scene: Scene) -> None:
    seed(scene)

    table = run_script(main)
    document = run_script(main, "--json")

    assert table.code == document.code == 1
    assert summary_counts(table.out) == document.counts
    assert "dry run" in table.out


def test_batches_walk_past_the_first_batch(run_script: Runner, scene: Scene) -> None:
    for _ in range(5):
        attempt = scene.attempt()
        scene.drop_messages(attempt)
        scene.age(attempt, timedelta(hours=1))

    result = run_script(main, "--batch-size", "2", "--apply", "--json")

    assert result.counts["requeued"] == 5
    assert run_script(main, "--json").counts["problems"] == 0


def test_an_attempt_locked_by_another_transaction_is_left_for_the_next_run(
    run_script: Runner, scene: Scene, db_dsn: str
) -> None:
    attempt = scene.claimed()
    scene.expire_lease(attempt, timedelta(hours=1))
    with psycopg.connect(db_dsn) as other:
        other.execute("select 1 from voice_clone_attempts where id = %s for update", (attempt["id"],))

        busy = run_script(main, "--apply", "--json")

        assert busy.code == 1
        assert busy.json["items"][0]["outcome"] == "skipped_locked"
        assert (busy.counts["locked"], busy.counts["unfixed"]) == (1, 1)
        other.rollback()

    assert run_script(main, "--apply", "--json").counts["requeued"] == 1


def test_the_sql_function_rechecks_version_and_lease_under_the_lock(scene: Scene) -> None:
    live = scene.claimed()
    moved = scene.claimed()
    scene.expire_lease(moved, timedelta(hours=1))

    def recover(attempt: dict[str, object], version: object) -> str:
        row = scene.conn.execute(
            "select outcome from voicegate.recover_attempt(%s, %s, 'test', 'requeue', 'lease_expired', 'm')",
            (attempt["id"], version),
        ).fetchone()
        assert row is not None
        return str(row[0])

    assert recover(live, live["version"]) == "skipped_live_lease"
    assert recover(moved, moved["version"] - 1) == "skipped_changed"  # type: ignore[operator]
    assert scene.conn.execute("select count(*) from voicegate.audit_events").fetchone() == (0,)
