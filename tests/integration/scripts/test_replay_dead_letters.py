"""replay-dead-letters: dead letters are listed with their last error; chosen ones are replayed (a
retry attempt for a failed clone, a resend for anything else) or discarded, archived and audited."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from devkit.db import one
from scripts.replay_dead_letters import main
from tests.integration.scripts.conftest import Runner, Scene, audit_events, snapshot, summary_counts
from tests.support import queue_messages


def dead_letter(db: psycopg.Connection[Any], source_queue: str, message: dict[str, Any], error: str) -> int:
    """A dead letter in the consumers' format."""
    body = {
        "sourceQueue": source_queue,
        "sourceMsgId": 41,
        "readCount": 5,
        "message": message,
        "error": {"code": error, "message": f"{error} on every try"},
        "deadAt": "2026-11-21T10:00:00+00:00",
    }
    msg_id: int = one(db, "select pgmq.send('voice_dead_letter', %s::jsonb) as id", (json.dumps(body),))["id"]
    return msg_id


def clone_message(attempt: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "VOICE_CLONE_PROCESS",
        "attemptId": str(attempt["id"]),
        "reflectionId": str(attempt["reflection_id"]),
        "version": attempt["version"],
    }


def seed(scene: Scene) -> dict[str, Any]:
    db = scene.conn
    failed = scene.move(scene.claimed(), status="failed", changes={"last_error_code": "dead_lettered"})
    scene.drop_messages(failed)
    moved_on = scene.move(scene.attempt(), status="canceled")
    preview = {"type": "VOICE_PREVIEW", "attemptId": str(moved_on["id"]), "version": 3}
    return {
        "failed": failed,
        "clone_letter": dead_letter(db, "voice_clone_process", clone_message(failed), "provider_unavailable"),
        "preview_letter": dead_letter(db, "voice_preview", preview, "synthesis_failed"),
        "stale_letter": dead_letter(db, "voice_clone_process", clone_message(moved_on), "lease_lost"),
        "preview": preview,
    }


def test_dry_run_lists_every_dead_letter_with_its_error_and_changes_nothing(
    run_script: Runner, scene: Scene, db: psycopg.Connection[Any]
) -> None:
    seeded = seed(scene)
    before = snapshot(db)

    result = run_script(main, "--json", "--all")

    assert result.code == 1
    items = {item["msg_id"]: item for item in result.json["items"]}
    assert set(items) == {seeded["clone_letter"], seeded["preview_letter"], seeded["stale_letter"]}
    clone = items[seeded["clone_letter"]]
    assert clone["error"] == "provider_unavailable: provider_unavailable on every try"
    assert (clone["type"], clone["attempt_id"], clone["read_count"]) == (
        "VOICE_CLONE_PROCESS",
        str(seeded["failed"]["id"]),
        5,
    )
    assert {item["outcome"] for item in items.values()} == {"would replay"}
    assert result.counts["problems"] == result.counts["unfixed"] == 3
    assert snapshot(db) == before


def test_apply_needs_a_choice(run_script: Runner, scene: Scene) -> None:
    seed(scene)

    with pytest.raises(SystemExit) as exit_info:
        run_script(main, "--apply")

    assert exit_info.value.code == 2


def test_apply_replays_the_chosen_ones_and_discard_clears_the_rest(
    run_script: Runner, scene: Scene, db: psycopg.Connection[Any]
) -> None:
    seeded = seed(scene)
    failed = seeded["failed"]

    result = run_script(
        main, "--apply", "--json", "--id", str(seeded["clone_letter"]), "--id", str(seeded["preview_letter"])
    )

    assert result.code == 1  # the third one is still there
    assert (result.counts["replayed"], result.counts["unfixed"]) == (2, 1)
    old = scene.row(failed["id"])
    assert (old["status"], old["is_active"]) == ("failed", False)
    new = one(
        db, "select * from voice_clone_attempts where reflection_id = %s and is_active", (failed["reflection_id"],)
    )
    assert (new["status"], new["voice_id"], new["source"]) == ("queued", failed["voice_id"], failed["source"])
    assert [m["message"]["attemptId"] for m in queue_messages(db, "voice_clone_process")].count(str(new["id"])) == 1
    assert [m["message"] for m in queue_messages(db, "voice_preview")] == [seeded["preview"]]
    assert [m["msg_id"] for m in queue_messages(db, "voice_dead_letter")] == [seeded["stale_letter"]]
    archived = {r[0] for r in db.execute("select msg_id from pgmq.a_voice_dead_letter")}
    assert archived == {seeded["clone_letter"], seeded["preview_letter"]}
    events = {e["subject_id"]: e for e in audit_events(db)}
    assert set(events) == {str(seeded["clone_letter"]), str(seeded["preview_letter"])}
    assert events[str(seeded["clone_letter"])]["detail"]["new_attempt_id"] == str(new["id"])

    stale = run_script(main, "--apply", "--json", "--id", str(seeded["stale_letter"]))

    assert stale.code == 1
    assert stale.json["items"][0]["outcome"] == "not replayable: the attempt is canceled"

    discarded = run_script(main, "--apply", "--json", "--discard", "--id", str(seeded["stale_letter"]))

    assert (discarded.code, discarded.counts["discarded"]) == (0, 1)
    assert audit_events(db, "dead_letter.discard")[0]["subject_id"] == str(seeded["stale_letter"])
    again = run_script(main, "--json")
    assert (again.code, again.counts["problems"]) == (0, 0)


def test_an_unknown_id_is_reported(run_script: Runner, scene: Scene) -> None:
    seed(scene)

    result = run_script(main, "--json", "--id", "999999")

    assert result.counts["not_found"] == 1
    assert any("999999" in note for note in result.json["notes"])


def test_table_and_json_carry_the_same_counts(run_script: Runner, scene: Scene) -> None:
    seed(scene)

    table = run_script(main, "--batch-size", "1")
    document = run_script(main, "--json", "--batch-size", "1")

    assert summary_counts(table.out) == document.counts
    assert document.counts["problems"] == 3


def test_a_dead_webhook_delivery_goes_back_with_its_webhook_id(
    run_script: Runner, scene: Scene, db: psycopg.Connection[Any]
) -> None:
    delivery = {
        "webhookId": "msg_0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "endpointId": None,
        "type": "voice.ready",
        "timestamp": "2026-11-21T09:59:58.000000Z",
        "data": {"ownerId": str(scene.owner), "voiceId": str(scene.voice())},
    }
    letter = dead_letter(db, "webhook_delivery", delivery, "max_reads_exceeded")

    result = run_script(main, "--apply", "--json", "--id", str(letter))

    assert (result.code, result.counts["replayed"]) == (0, 1)
    assert [m["message"] for m in queue_messages(db, "webhook_delivery")] == [delivery]
    assert queue_messages(db, "voice_dead_letter") == []
