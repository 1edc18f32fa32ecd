"""migrate-voices against seeded voices and the provider fakes: each voice is planned (re-enrol from
its sample, reuse a reference the target still has, no sample, already there, busy); the dry run changes
nothing in the database or at any provider; --apply makes one attempt per voice with its audit event;
filters, bounded batches and an unconfigured target."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from devkit.db import one, seed_consent
from fakes import SelfhostedFake, serve
from fakes.selfhosted import SelfhostedVoice
from scripts.migrate_voices import main
from tests.integration.scripts.conftest import Fakes, Runner, Scene, audit_events, snapshot


@pytest.fixture
def server(fakes: Fakes, monkeypatch: pytest.MonkeyPatch) -> Iterator[SelfhostedFake]:
    """A self-hosted server with a voice registry, configured beside the other fakes."""
    fake = SelfhostedFake("registry")
    with serve(fake) as url:
        monkeypatch.setenv("SELFHOSTED_BASE_URL", url)
        yield fake


def sample_of(scene: Scene, voice_id: uuid.UUID) -> uuid.UUID:
    """A checked sample linked to the voice (its objects are not needed to plan or start a move)."""
    consent = seed_consent(scene.conn, scene.owner)
    return one(
        scene.conn,
        "insert into voice_samples (owner_id, voice_id, consent_id, object_path, status, provider,"
        " processed_object_path, processed_provider) values (%s, %s, %s, %s, 'ready', 'elevenlabs', %s, 'elevenlabs')"
        " returning id",
        (
            scene.owner,
            voice_id,
            consent,
            f"{scene.owner}/{voice_id}/original",
            f"{scene.owner}/{voice_id}/processed.wav",
        ),
    )["id"]


def cloned(
    scene: Scene, provider: str, provider_voice_id: str, *, voice: uuid.UUID | None = None, reflection: bool = False
) -> dict[str, Any]:
    return scene.ready(provider=provider, provider_voice_id=provider_voice_id, voice=voice, reflection=reflection)


@pytest.fixture
def seeded(scene: Scene, fakes: Fakes, server: SelfhostedFake) -> dict[str, Any]:
    # With a sample and a reflection: re-enrolled at the self-hosted server, its gate closes again.
    movable = cloned(scene, "elevenlabs", "ElevenVoiceA", reflection=True)
    sample_of(scene, movable["voice_id"])
    # No sample left: cannot be moved.
    stranded = cloned(scene, "elevenlabs", "ElevenVoiceB")
    # Was on the self-hosted server before; the server still has it: taken back, not enrolled.
    back = scene.voice()
    cloned(scene, "selfhosted", "voicegate_" + "a" * 24, voice=back)
    cloned(scene, "elevenlabs", "ElevenVoiceC", voice=back)
    server.voices["voicegate_" + "a" * 24] = SelfhostedVoice("voicegate_" + "a" * 24, "c", b"RIFF", "audio/wav", None)
    # Was there too, but the server lost it: re-enrolled from its sample.
    lost = scene.voice()
    cloned(scene, "selfhosted", "voicegate_" + "b" * 24, voice=lost)
    cloned(scene, "elevenlabs", "ElevenVoiceD", voice=lost)
    sample_of(scene, lost)
    # Already there, and one with a clone under way.
    there = cloned(scene, "selfhosted", "voicegate_" + "c" * 24)
    busy = cloned(scene, "elevenlabs", "ElevenVoiceE")
    scene.attempt(provider="elevenlabs", voice=busy["voice_id"], reflection=False)
    return {
        "movable": movable["voice_id"],
        "reflection": movable["reflection_id"],
        "stranded": stranded["voice_id"],
        "back": back,
        "lost": lost,
        "there": there["voice_id"],
        "busy": busy["voice_id"],
    }


def plans(result: Any) -> dict[str, dict[str, Any]]:
    return {item["voice_id"]: item for item in result.json["items"]}


def provider_state(fakes: Fakes, server: SelfhostedFake) -> tuple[Any, ...]:
    creates = [r for r in server.requests if r.method in {"POST", "DELETE"} and "/audio/voices" in r.path]
    return fakes.voice_ids(), set(server.voices), len(creates), len(fakes.eleven.requests_to("POST", "/v1/voices/add"))


def test_the_dry_run_plans_every_voice_and_changes_nothing(
    run_script: Runner, seeded: dict[str, Any], fakes: Fakes, server: SelfhostedFake, db: psycopg.Connection[Any]
) -> None:
    before, providers = snapshot(db), provider_state(fakes, server)

    result = run_script(main, "--json", "--to", "selfhosted")

    assert result.code == 1, result.out  # one voice cannot be moved
    found = plans(result)
    ids = {name: str(value) for name, value in seeded.items()}
    assert found[ids["movable"]]["outcome"] == "would re-enrol"
    assert found[ids["stranded"]]["plan"] == "re-enrol"
    assert found[ids["stranded"]]["outcome"].startswith("left: no stored sample remains")
    assert (found[ids["back"]]["outcome"], found[ids["back"]]["reference"]) == ("would reuse", "voicegate_" + "a" * 24)
    assert found[ids["lost"]]["outcome"] == "would re-enrol"
    assert found[ids["lost"]]["reference"] == f"{'voicegate_' + 'b' * 24} (gone at selfhosted)"
    assert found[ids["there"]]["outcome"] == "skipped: already on selfhosted"
    assert found[ids["busy"]]["outcome"].startswith("skipped: attempt ")
    counts = result.counts
    assert (counts["voices"], counts["to_move"], counts["no_sample"], counts["skipped"]) == (6, 3, 1, 2)
    assert (counts["moved"], counts["unfixed"]) == (0, 1)
    assert snapshot(db) == before
    assert provider_state(fakes, server) == providers


def test_apply_starts_one_attempt_per_movable_voice_with_its_audit_event(
    run_script: Runner,
    seeded: dict[str, Any],
    scene: Scene,
    fakes: Fakes,
    server: SelfhostedFake,
    db: psycopg.Connection[Any],
) -> None:
    providers = provider_state(fakes, server)

    result = run_script(main, "--json", "--to", "selfhosted", "--apply", "--batch-size", "2")

    assert result.code == 1, result.out
    counts = result.counts
    assert (counts["moved"], counts["reused"], counts["reenrolled"], counts["no_sample"]) == (3, 1, 2, 1)

    def newest(voice: uuid.UUID) -> dict[str, Any]:
        return one(
            db, "select * from voice_clone_attempts where voice_id = %s order by created_at desc limit 1", (voice,)
        )

    movable = newest(seeded["movable"])
    assert (movable["source"], movable["provider"], movable["status"]) == ("provider_migration", "selfhosted", "queued")
    assert (movable["provider_voice_id"], movable["reflection_id"], movable["preview_required"]) == (
        None,
        seeded["reflection"],
        True,
    )
    assert movable["sample_id"] is not None
    gate = one(db, "select ready, reasons from voice_launch_readiness(%s)", (seeded["reflection"],))
    assert (gate["ready"], gate["reasons"]) == (False, ["clone_not_ready", "runtime_not_synced", "preview_required"])
    voice_row = one(
        db, "select status, tts_provider, provider_voice_id from voices where id = %s", (seeded["movable"],)
    )
    assert voice_row == {"status": "cloning", "tts_provider": "selfhosted", "provider_voice_id": None}
    back = newest(seeded["back"])
    assert (back["provider_voice_id"], back["sample_id"], back["preview_required"]) == (
        "voicegate_" + "a" * 24,
        None,
        False,
    )
    assert newest(seeded["stranded"])["source"] == "sample_upload"
    gone = one(
        db, "select gone_reason from voice_provider_references where provider_voice_id = %s", ("voicegate_" + "b" * 24,)
    )
    assert gone["gone_reason"] == "voice_not_found"
    messages = db.execute("select message->>'attemptId' from pgmq.q_voice_clone_process").fetchall()
    assert {str(movable["id"]), str(back["id"])} <= {row[0] for row in messages}
    events = audit_events(db, "voice.migrate")
    assert sorted(e["subject_id"] for e in events) == sorted(str(seeded[k]) for k in ("movable", "back", "lost"))
    assert {e["detail"]["run_id"] for e in events} == {result.json["runId"]}
    assert provider_state(fakes, server) == providers  # the workers enrol; the script only starts attempts

    again = run_script(main, "--json", "--to", "selfhosted", "--apply")
    assert again.counts["moved"] == 0
    assert again.counts["skipped"] == 5  # three under way, one already there, one busy


def test_filters_choose_the_voices(
    run_script: Runner, seeded: dict[str, Any], server: SelfhostedFake, db: psycopg.Connection[Any]
) -> None:
    named = run_script(
        main, "--json", "--to", "selfhosted", "--voice", str(seeded["movable"]), "--voice", str(seeded["there"])
    )
    assert sorted(plans(named)) == sorted([str(seeded["movable"]), str(seeded["there"])])
    assert named.code == 0
    stranger = uuid.uuid4()
    unknown = run_script(main, "--json", "--to", "selfhosted", "--voice", str(stranger))
    assert (unknown.code, unknown.json["items"]) == (0, [])
    assert f"voice {stranger}: no such live, cloned voice" in unknown.json["notes"]
    from_selfhosted = run_script(main, "--json", "--to", "elevenlabs", "--from", "selfhosted")
    assert list(plans(from_selfhosted)) == [str(seeded["there"])]
    assert plans(from_selfhosted)[str(seeded["there"])]["outcome"].startswith("left: no stored sample")


def test_an_unconfigured_target_or_a_pointless_move_is_a_usage_error(
    run_script: Runner, seeded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SELFHOSTED_BASE_URL")
    unconfigured = run_script(main, "--json", "--to", "selfhosted")
    assert unconfigured.code == 2
    assert "SELFHOSTED_BASE_URL" in unconfigured.err
    with pytest.raises(SystemExit) as same:
        run_script(main, "--to", "qwen", "--from", "qwen")
    assert same.value.code == 2
