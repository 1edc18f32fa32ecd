"""repair-voice-mirror: a mirror (or voice_id) that disagrees with the active attempt is rewritten
through the lifecycle; agreeing mirrors, whatever TimeZone wrote them, are left alone."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from devkit.db import one
from scripts.repair_voice_mirror import main
from tests.integration.scripts.conftest import Runner, Scene, audit_events, snapshot, summary_counts
from tests.support import mirror


def expected_mirror(db: psycopg.Connection[Any], attempt_id: object) -> dict[str, Any]:
    row = one(db, "select voicegate.attempt_mirror(a) as m from voice_clone_attempts a where a.id = %s", (attempt_id,))
    value: dict[str, Any] = row["m"]
    return value


def seed(scene: Scene) -> dict[str, dict[str, Any]]:
    db = scene.conn
    drifted = scene.claimed()
    db.execute(
        "update reflections set voice = jsonb_set(voice, '{cloneStatus}', '\"ready\"') where id = %s",
        (drifted["reflection_id"],),
    )
    wrong_voice = scene.attempt()
    db.execute("update reflections set voice_id = %s where id = %s", (scene.voice(), wrong_voice["reflection_id"]))
    consistent = scene.claimed()
    other_zone = scene.attempt()
    # The same instant written by a session in another TimeZone is not drift.
    db.execute(
        "update reflections set voice = jsonb_set(voice, '{updatedAt}',"
        " to_jsonb(to_char((voice->>'updatedAt')::timestamptz at time zone 'Asia/Tokyo',"
        ' \'YYYY-MM-DD"T"HH24:MI:SS.US"+09:00"\'))) where id = %s',
        (other_zone["reflection_id"],),
    )
    assert mirror(db, other_zone["reflection_id"])["updatedAt"].endswith("+09:00")
    scene.reflection()  # no attempt at all, default mirror
    return {"drifted": drifted, "wrong_voice": wrong_voice, "consistent": consistent, "other_zone": other_zone}


def test_dry_run_finds_the_drift_and_changes_nothing(
    run_script: Runner, scene: Scene, db: psycopg.Connection[Any]
) -> None:
    attempts = seed(scene)
    before = snapshot(db)

    result = run_script(main, "--json")

    assert result.code == 1
    found = {item["reflection_id"]: item for item in result.json["items"]}
    assert set(found) == {str(attempts["drifted"]["reflection_id"]), str(attempts["wrong_voice"]["reflection_id"])}
    assert found[str(attempts["drifted"]["reflection_id"])]["drift"] == ["cloneStatus"]
    assert found[str(attempts["wrong_voice"]["reflection_id"])]["drift"] == ["voice_id"]
    assert result.counts["reflections"] == 5
    assert result.counts["problems"] == result.counts["unfixed"] == 2
    assert snapshot(db) == before


def test_apply_rewrites_the_mirror_through_a_transition_then_finds_nothing(
    run_script: Runner, scene: Scene, db: psycopg.Connection[Any]
) -> None:
    attempts = seed(scene)
    drifted = attempts["drifted"]

    result = run_script(main, "--apply", "--json")

    assert result.code == 0, result.out
    assert result.counts["repaired"] == 2
    for name in ("drifted", "wrong_voice"):
        attempt = scene.row(attempts[name]["id"])
        assert attempt["version"] == attempts[name]["version"] + 1
        assert mirror(db, attempt["reflection_id"]) == expected_mirror(db, attempt["id"])
    assert mirror(db, drifted["reflection_id"])["cloneStatus"] == "processing"
    assert scene.row(attempts["consistent"]["id"])["version"] == attempts["consistent"]["version"]
    events = audit_events(db, "voice_mirror.repair")
    assert len(events) == 2
    event = next(e for e in events if e["subject_id"] == str(drifted["reflection_id"]))
    assert event["detail"]["mirror_before"]["cloneStatus"] == "ready"
    assert event["detail"]["attempt_id"] == str(drifted["id"])

    again = run_script(main, "--apply", "--json")

    assert (again.code, again.counts["problems"]) == (0, 0)


def test_a_mirror_naming_a_clone_without_an_active_attempt_is_reported_not_rewritten(
    run_script: Runner, scene: Scene, db: psycopg.Connection[Any]
) -> None:
    reflection = scene.reflection()
    db.execute(
        "update reflections set voice = voice || %s::jsonb where id = %s",
        (json.dumps({"cloneStatus": "ready", "attemptId": "00000000-0000-0000-0000-000000000001"}), reflection),
    )
    before = snapshot(db)

    result = run_script(main, "--apply", "--json")

    assert result.code == 1
    assert [(i["reflection_id"], i["outcome"]) for i in result.json["items"]] == [(str(reflection), "unrepairable")]
    assert result.counts["no_active_attempt"] == result.counts["unfixed"] == 1
    assert snapshot(db) == before


def test_table_and_json_carry_the_same_counts(run_script: Runner, scene: Scene) -> None:
    seed(scene)

    table = run_script(main, "--batch-size", "2")
    document = run_script(main, "--json", "--batch-size", "2")

    assert summary_counts(table.out) == document.counts
    assert document.counts["reflections"] == 5
