"""The issue's scenario in one database: an orphan provider voice, a zombie, a drifted mirror, a
stale lease, an expired sample and a dead letter. Each is found by its own script (and only by it),
the dry runs change nothing, the --apply runs fix exactly those, and every script then finds nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from scripts import (
    purge_expired_samples,
    reconcile_provider_voices,
    recover_stale_attempts,
    repair_voice_mirror,
    replay_dead_letters,
    status,
)
from tests.integration.scripts.conftest import Fakes, Runner, Scene, audit_events, snapshot
from tests.integration.scripts.test_purge_expired_samples import seed_sample, store
from tests.integration.scripts.test_replay_dead_letters import clone_message, dead_letter


def test_each_inconsistency_is_found_by_its_script_and_fixed_once(
    run_script: Runner, scene: Scene, fakes: Fakes, db: psycopg.Connection[Any], db_dsn: str, tmp_path: Path
) -> None:
    orphan = fakes.cartesia_voice("vg-written-nowhere", age=timedelta(days=2))
    zombie = scene.ready(provider="elevenlabs", provider_voice_id="DeletedAtTheProvider")
    drifted = scene.claimed()
    db.execute(
        'update reflections set voice = voice || \'{"cloneStatus": "ready"}\' where id = %s',
        (drifted["reflection_id"],),
    )
    stale = scene.claimed()
    scene.expire_lease(stale, timedelta(minutes=30))
    scene.drop_messages(stale)
    sample = seed_sample(scene, expired=True, processed=False)
    storage = tmp_path / "storage"
    store(db_dsn, storage, [sample["object_path"]])
    failed = scene.move(scene.claimed(), status="failed", changes={"last_error_code": "dead_lettered"})
    scene.drop_messages(failed)
    letter = dead_letter(db, "voice_clone_process", clone_message(failed), "provider_unavailable")

    scripts: dict[str, tuple[Any, tuple[str, ...]]] = {
        "status": (status.main, ()),
        "recover": (recover_stale_attempts.main, ()),
        "repair": (repair_voice_mirror.main, ()),
        "purge": (purge_expired_samples.main, ("--local-storage-dir", str(storage))),
        "replay": (replay_dead_letters.main, ("--all",)),
        "reconcile": (reconcile_provider_voices.main, ("--delete-orphans", "--reclone-zombies")),
    }
    before, provider_voices = snapshot(db), fakes.voice_ids()

    found = {name: run_script(main, "--json", *args) for name, (main, args) in scripts.items()}

    assert {name: result.code for name, result in found.items()} == dict.fromkeys(scripts, 1)
    assert (found["status"].counts["dead_letters"], found["status"].counts["stale_leases"]) == (1, 1)
    assert [i["attempt_id"] for i in found["recover"].json["items"]] == [str(stale["id"])]
    assert [i["reflection_id"] for i in found["repair"].json["items"]] == [str(drifted["reflection_id"])]
    assert [i["sample_id"] for i in found["purge"].json["items"]] == [str(sample["id"])]
    assert [i["msg_id"] for i in found["replay"].json["items"]] == [letter]
    problems = [i for i in found["reconcile"].json["items"] if i["finding"] in {"orphan", "zombie"}]
    assert sorted((i["finding"], i["provider_voice_id"]) for i in problems) == [
        ("orphan", orphan),
        ("zombie", "DeletedAtTheProvider"),
    ]
    assert next(i for i in problems if i["finding"] == "zombie")["attempt_id"] == str(zombie["id"])
    assert snapshot(db) == before
    assert fakes.voice_ids() == provider_voices

    fixed = {
        name: run_script(main, "--json", "--apply", *args) for name, (main, args) in scripts.items() if name != "status"
    }

    assert {name: result.code for name, result in fixed.items()} == dict.fromkeys(fixed, 0), json.dumps(
        {name: result.counts for name, result in fixed.items()}
    )
    assert {name: result.counts["fixed"] for name, result in fixed.items()} == {
        "recover": 1,
        "repair": 1,
        "purge": 1,
        "replay": 1,
        "reconcile": 2,
    }
    assert sorted(e["action"] for e in audit_events(db)) == [
        "attempt.reclone",
        "attempt.requeue",
        "dead_letter.replay",
        "provider_voice.delete",
        "sample.purge",
        "voice_mirror.repair",
    ]

    again = {name: run_script(main, "--json", *args) for name, (main, args) in scripts.items()}

    assert {name: (result.code, result.counts["problems"]) for name, result in again.items()} == dict.fromkeys(
        scripts, (0, 0)
    )
