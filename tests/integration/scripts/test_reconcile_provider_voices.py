"""reconcile-provider-voices against the provider fakes: orphans (adoptable, deletable, in grace, in
flight), foreign voices, zombies and model mismatches are found; each fix needs its flag and --apply."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from devkit.db import one
from scripts.reconcile_provider_voices import main
from tests.integration.scripts.conftest import (
    PINNED,
    REALTIME,
    Fakes,
    Runner,
    Scene,
    audit_events,
    snapshot,
    summary_counts,
)
from tests.provider_support import CARTESIA_KEY

ALL_FIXES = ("--adopt", "--delete-orphans", "--reclone-zombies", "--fix-models")


def keyed(scene: Scene, attempt: dict[str, Any]) -> dict[str, Any]:
    """The attempt with its enrolment key stored (as the worker does before calling the provider)."""
    return scene.move(attempt, changes={"enrolment_key": f"vg-{attempt['id']}"})


@pytest.fixture
def seeded(scene: Scene, fakes: Fakes) -> dict[str, Any]:
    # Created at Qwen, then the worker died before recording it: lease expired, no provider voice.
    lost_write = keyed(scene, scene.claimed(provider="qwen"))
    scene.expire_lease(lost_write, timedelta(minutes=10))
    # A worker is still between the create and the database write.
    in_flight = keyed(scene, scene.claimed(provider="qwen"))
    zombie = scene.ready(provider="elevenlabs", provider_voice_id="DeletedAtTheProvider")
    mismatch_voice = fakes.qwen_voice("vg-mismatch", model=REALTIME)
    mismatch = scene.ready(provider="qwen", provider_voice_id=mismatch_voice, target_model=PINNED)
    healthy_voice = fakes.cartesia_voice("vg-healthy", age=timedelta(days=9))
    healthy = scene.ready(provider="cartesia", provider_voice_id=healthy_voice)
    return {
        "lost_write": lost_write,
        "lost_voice": fakes.qwen_voice(lost_write["enrolment_key"]),
        "in_flight": in_flight,
        "in_flight_voice": fakes.qwen_voice(in_flight["enrolment_key"]),
        "old_orphan": fakes.cartesia_voice("vg-nobody-old", age=timedelta(days=3)),
        "young_orphan": fakes.cartesia_voice("vg-nobody-young", age=timedelta(minutes=5)),
        "foreign": fakes.foreign_eleven_voice(),
        "zombie": zombie,
        "mismatch": mismatch,
        "mismatch_voice": mismatch_voice,
        "healthy": healthy,
    }


def findings(result: Any) -> dict[str, dict[str, Any]]:
    return {item["provider_voice_id"]: item for item in result.json["items"]}


def test_dry_run_finds_each_kind_and_changes_nothing(
    run_script: Runner, seeded: dict[str, Any], fakes: Fakes, db: psycopg.Connection[Any]
) -> None:
    before, provider_voices = snapshot(db), fakes.voice_ids()

    result = run_script(main, "--json", *ALL_FIXES)

    assert result.code == 1
    found = findings(result)
    assert found[seeded["lost_voice"]]["finding"] == "orphan"
    assert found[seeded["lost_voice"]]["attempt_id"] == str(seeded["lost_write"]["id"])
    assert found[seeded["lost_voice"]]["outcome"] == "would adopt"
    assert found[seeded["in_flight_voice"]]["finding"] == "orphan (in flight)"
    assert found[seeded["old_orphan"]]["outcome"] == "would delete"
    assert found[seeded["young_orphan"]]["finding"] == "orphan (in grace)"
    assert found[seeded["foreign"]]["outcome"] == "left alone"
    assert found["DeletedAtTheProvider"]["finding"] == "zombie"
    assert found["DeletedAtTheProvider"]["attempt_id"] == str(seeded["zombie"]["id"])
    assert found[seeded["mismatch_voice"]]["finding"] == "model mismatch"
    assert f"provider: {REALTIME}" in found[seeded["mismatch_voice"]]["detail"]
    counts = result.counts
    assert (counts["orphans"], counts["orphans_pending"], counts["foreign_voices"]) == (2, 2, 1)
    assert (counts["zombies"], counts["model_mismatches"], counts["problems"], counts["unfixed"]) == (1, 1, 4, 4)
    assert counts["providers_checked"] == 4
    assert snapshot(db) == before
    assert fakes.voice_ids() == provider_voices
    assert not fakes.cartesia.requests_to("DELETE", "/voices")


def test_apply_without_a_fix_flag_changes_nothing(
    run_script: Runner, seeded: dict[str, Any], fakes: Fakes, db: psycopg.Connection[Any]
) -> None:
    before, provider_voices = snapshot(db), fakes.voice_ids()

    result = run_script(main, "--json", "--apply")

    assert (result.code, result.counts["fixed"], result.counts["unfixed"]) == (1, 0, 4)
    assert findings(result)[seeded["lost_voice"]]["outcome"] == "left (use --adopt)"
    assert snapshot(db) == before
    assert fakes.voice_ids() == provider_voices


def test_apply_fixes_exactly_the_problems_then_finds_nothing(
    run_script: Runner, seeded: dict[str, Any], scene: Scene, fakes: Fakes, db: psycopg.Connection[Any]
) -> None:
    result = run_script(main, "--json", "--apply", *ALL_FIXES)

    assert result.code == 0, result.out
    counts = result.counts
    assert (counts["adopted"], counts["deleted"], counts["recloned"], counts["models_fixed"]) == (1, 1, 1, 1)
    adopted = scene.row(seeded["lost_write"]["id"])
    assert (adopted["provider_voice_id"], adopted["provider_target_model"]) == (seeded["lost_voice"], PINNED)
    assert adopted["provider_metadata"]["adopted"]["run_id"] == result.json["runId"]
    assert scene.row(seeded["in_flight"]["id"])["version"] == seeded["in_flight"]["version"]
    assert seeded["old_orphan"] not in fakes.cartesia.voices
    assert {seeded["young_orphan"], seeded["healthy"]["provider_voice_id"]} <= set(fakes.cartesia.voices)
    assert seeded["foreign"] in fakes.eleven.voices
    zombie = scene.row(seeded["zombie"]["id"])
    assert (zombie["status"], zombie["is_active"]) == ("superseded", False)
    fresh = one(
        db, "select * from voice_clone_attempts where reflection_id = %s and is_active", (zombie["reflection_id"],)
    )
    assert (fresh["status"], fresh["provider"], fresh["voice_id"]) == ("queued", "elevenlabs", zombie["voice_id"])
    fixed = scene.row(seeded["mismatch"]["id"])
    assert fixed["provider_target_model"] == REALTIME
    voice_row = one(db, "select provider_target_model from voices where id = %s", (fixed["voice_id"],))
    assert voice_row["provider_target_model"] == REALTIME
    actions = sorted(e["action"] for e in audit_events(db))
    assert actions == ["attempt.fix_target_model", "attempt.reclone", "provider_voice.adopt", "provider_voice.delete"]

    again = run_script(main, "--json")

    assert (again.code, again.counts["problems"]) == (0, 0)
    assert again.counts["orphans_pending"] == 2


def test_a_local_orphan_of_unknown_age_is_never_deleted(
    run_script: Runner, scene: Scene, db: psycopg.Connection[Any]
) -> None:
    db.execute(
        "insert into voicegate.local_voices (voice_id, name, language, enrolment_key, profile)"
        " values ('local-orphan', 'Ada', 'en', 'vg-nobody', %s)",
        (json.dumps({"median_f0_hz": 120.0, "f0_sd_semitones": 2.0, "syllable_rate_hz": 4.0, "envelope_db": [0.0]}),),
    )

    result = run_script(main, "--json", "--provider", "local", "--apply", "--delete-orphans")

    assert result.code == 1
    assert findings(result)["local-orphan"]["outcome"] == "left (needs a person)"
    assert db.execute("select count(*) from voicegate.local_voices").fetchone() == (1,)


def test_an_unreachable_provider_is_a_problem_not_a_crash(
    run_script: Runner, scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARTESIA_API_KEY", CARTESIA_KEY)
    monkeypatch.setenv("CARTESIA_BASE_URL", "http://127.0.0.1:1")

    result = run_script(main, "--json", "--provider", "cartesia")

    assert result.code == 1
    assert result.counts["provider_errors"] == 1
    assert "cartesia: listing failed" in result.json["notes"][0]


def test_table_and_json_carry_the_same_counts(run_script: Runner, seeded: dict[str, Any]) -> None:
    table = run_script(main)
    document = run_script(main, "--json")

    assert summary_counts(table.out) == document.counts
    assert document.counts["problems"] == 4
