"""Provider portability over HTTP with the consumers running (issue 16):

* the PRD flow through a self-hosted OpenAI-shaped server with a voice registry, through
  chatterbox-tts-api's library (its float WAV stored as 16-bit), without one (inline reference), and
  behind Modal (proxy auth, 303 + polling, cold start);
* clone with ElevenLabs → `migrate-voices --to selfhosted --apply` → the same voice speaks through
  the self-hosted server, the mirror shows it, the launch gate closes until the new preview is
  heard → roll back: the ElevenLabs reference is reused, no new ElevenLabs voice is made;
* the provider forgets a voice → the next job succeeds after an automatic re-enrolment; with the
  sample purged it fails with `sample_missing`;
* a sample kept for re-enrolment survives its retention as its cleaned copy, and still heals the
  voice; withdrawing that consent, or deleting the voice, purges it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from backend.clone.likeness import probe_text
from devkit.audio_corpus import speech_wav
from devkit.db import Conn, one
from fakes import CartesiaFake, ElevenLabsFake, SelfhostedFake, serve
from fakes.selfhosted import MODEL
from scripts.migrate_voices import main as migrate_voices
from tests.e2e.conftest import elevenlabs_env
from tests.e2e.test_clone_lifecycle import clone_upload, follow_until
from tests.e2e.test_samples_and_synthesis import job_settled, objects, sample_settled, spoken, upload
from tests.integration.api.conftest import User

Client = AsyncTestClient  # type: ignore[type-arg]
pytestmark = pytest.mark.timeout(180)
TEXT = "Hello there, this is my voice speaking."
MODAL_KEYS = {"MODAL_KEY": "wk-test-key", "MODAL_SECRET": "ws-test-secret"}


def selfhosted_env(url: str, mode: str = "registry") -> dict[str, str]:
    env = {"SELFHOSTED_BASE_URL": url, "SELFHOSTED_MODEL": MODEL}
    if mode == "modal":
        env |= {"SELFHOSTED_PROFILE": "modal", **MODAL_KEYS}
    return env


@pytest.fixture
def selfhosted(request: pytest.FixtureRequest) -> Iterator[tuple[SelfhostedFake, str]]:
    fake = SelfhostedFake(**getattr(request, "param", {}))
    with serve(fake) as url:
        yield fake, url


async def speak(client: Client, user: User, body: dict[str, Any]) -> dict[str, Any]:
    accepted = await client.post("/api/v1/clone", json={"text": TEXT, **body}, headers=user.headers)
    assert accepted.status_code == 202, accepted.text
    return await job_settled(client, user, accepted.json()["jobId"])


async def ready_sample(client: Client, user: User, seed: int, **fields: str) -> str:
    accepted = await upload(client, user, speech_wav(seed=seed), transcript="Hello, this is my voice.", **fields)
    assert accepted.status_code == 202, accepted.text
    sample = await sample_settled(client, user, accepted.json()["sampleId"])
    assert sample["status"] == "ready", sample["failureReason"]
    sample_id: str = sample["sampleId"]
    return sample_id


def attempts_of(sql: Conn, voice_id: str) -> list[dict[str, Any]]:
    with sql.cursor() as cur:
        cur.execute(
            "select id, source, provider, status, provider_voice_id, preview_required from voice_clone_attempts"
            " where voice_id = %s order by created_at",
            (voice_id,),
        )
        columns = [c.name for c in cur.description or []]
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


async def run_migrate(capsys: pytest.CaptureFixture[str], db_dsn: str, *args: str) -> tuple[int, str]:
    """`voicegate ops migrate-voices` against this test's database, on a thread of its own (it runs its
    own event loop) while the app's consumers keep working on this one."""
    capsys.readouterr()
    code = await asyncio.to_thread(migrate_voices, ["--database-url", db_dsn, "--no-progress", "--json", *args])
    return code, capsys.readouterr().out


@pytest.mark.parametrize(
    ("selfhosted", "mode"),
    [
        ({"mode": "registry"}, "registry"),
        ({"mode": "inline"}, "inline"),
        ({"mode": "chatterbox"}, "chatterbox"),
        ({"mode": "modal", "cold_start_s": 0.8, "result_cap_s": 0.3}, "modal"),
    ],
    indirect=["selfhosted"],
)
async def test_the_prd_flow_through_a_self_hosted_server(
    worker_client: Callable[..., Any],
    make_user: Callable[[], User],
    sql: Conn,
    selfhosted: tuple[SelfhostedFake, str],
    mode: str,
) -> None:
    fake, url = selfhosted
    client = await worker_client(VOICE_PROVIDER="selfhosted", **selfhosted_env(url, mode))
    user = make_user()
    sample_id = await ready_sample(client, user, seed=11)
    assert one(sql, "select provider from voice_samples")["provider"] == "selfhosted"

    job = await speak(client, user, {"sampleId": sample_id})

    assert job["status"] == "succeeded", job["error"]
    audio, rate = await spoken(client, user, job["jobId"])
    assert len(audio) / rate > 1.0
    voice = one(sql, "select tts_provider, provider_voice_id, provider_metadata from voices")
    assert voice["tts_provider"] == "selfhosted"
    assert voice["provider_voice_id"].startswith("voicegate_")
    reference = one(sql, "select provider, provider_voice_id, reason, gone_at from voice_provider_references")
    assert reference == {
        "provider": "selfhosted",
        "provider_voice_id": voice["provider_voice_id"],
        "reason": "sample_upload",
        "gone_at": None,
    }
    if mode == "inline":
        assert voice["provider_metadata"]["mode"] == "inline"
        assert fake.requests_to("POST", "/v1/audio/voices") == []
        assert fake.speeches[-1]["voice"] == "inline"
        assert fake.speeches[-1]["ref_text"] == "Hello, this is my voice."
        kept = one(sql, "select voice_id, length(audio) as n from voicegate.selfhosted_voices")
        assert (kept["voice_id"], kept["n"] > 24000) == (voice["provider_voice_id"], True)
    else:
        assert list(fake.voices) == [voice["provider_voice_id"]]
        assert fake.speeches[-1]["voice"] == voice["provider_voice_id"]
        assert one(sql, "select count(*) as n from voicegate.selfhosted_voices")["n"] == 0
    if mode == "modal":
        assert fake.cold_starts == 1
        assert fake.polls >= 1  # the cold start outlasted the 0.3 s cap: a 303, then polled
        assert all(r.headers.get("modal-key") == "wk-test-key" for r in fake.requests)


async def test_migrate_to_self_hosted_and_roll_back_without_a_new_elevenlabs_voice(
    worker_client: Callable[..., Any],
    make_user: Callable[[], User],
    sql: Conn,
    db_dsn: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    selfhosted: tuple[SelfhostedFake, str],
) -> None:
    server, server_url = selfhosted
    eleven = ElevenLabsFake(max_voices=100)
    with serve(eleven) as eleven_url:
        env = {**elevenlabs_env(eleven, eleven_url), **selfhosted_env(server_url)}
        for name, value in env.items():
            monkeypatch.setenv(name, value)  # the script reads the process's settings
        client = await worker_client(**env)
        alice = make_user()
        rid = (await client.post("/v1/reflections", json={"name": "Ada"}, headers=alice.headers)).json()["id"]

        # Cloned with ElevenLabs, previewed and launched.
        cloned = await clone_upload(client, alice, rid, speech_wav(seed=21), keep_sample="true")
        assert cloned.status_code == 202, cloned.text
        voice_id = cloned.json()["voiceId"]
        await follow_until(client, alice, sql, rid, lambda s: s["voice"]["previewStatus"] == "ready")
        assert (await client.post(f"/v1/reflections/{rid}/voice/preview/complete", headers=alice.headers)).is_success
        assert (await client.post(f"/v1/reflections/{rid}/sessions", headers=alice.headers)).status_code == 201
        eleven_voice = one(sql, "select provider_voice_id from voices where id = %s", (voice_id,))["provider_voice_id"]
        adds = len(eleven.requests_to("POST", "/v1/voices/add"))
        assert adds == 1

        # Move it to the self-hosted server.
        code, out = await run_migrate(capsys, db_dsn, "--to", "selfhosted", "--apply")
        assert code == 0, out
        assert '"moved":1' in out
        assert '"reenrolled":1' in out
        state = (await client.get(f"/v1/reflections/{rid}/voice", headers=alice.headers)).json()
        assert state["launchReady"] is False
        await follow_until(client, alice, sql, rid, lambda s: s["voice"]["previewStatus"] == "ready")
        state = (await client.get(f"/v1/reflections/{rid}/voice", headers=alice.headers)).json()
        assert state["voice"]["provider"] == "selfhosted"
        assert state["voice"]["providerVoiceId"] in server.voices
        assert (state["launchReady"], state["blockingReasons"]) == (False, ["preview_required"])  # re-gated
        blocked = await client.post(f"/v1/reflections/{rid}/sessions", headers=alice.headers)
        assert blocked.status_code == 409
        assert (await client.post(f"/v1/reflections/{rid}/voice/preview/complete", headers=alice.headers)).is_success
        assert (await client.post(f"/v1/reflections/{rid}/sessions", headers=alice.headers)).status_code == 201

        tts_before = len(eleven.requests_to("POST", "/v1/text-to-speech"))
        job = await speak(client, alice, {"voiceId": voice_id})
        assert job["status"] == "succeeded", job["error"]
        assert server.speeches[-1]["voice"] == state["voice"]["providerVoiceId"]
        assert len(eleven.requests_to("POST", "/v1/text-to-speech")) == tts_before
        references = {
            (r[0], r[1], r[2])
            for r in sql.execute(
                "select provider, provider_voice_id, reason from voice_provider_references where voice_id = %s",
                (voice_id,),
            )
        }
        assert references == {
            ("elevenlabs", eleven_voice, "sample_upload"),
            ("selfhosted", state["voice"]["providerVoiceId"], "provider_migration"),
        }
        audit = one(sql, "select actor, detail from voicegate.audit_events where action = 'voice.migrate'")
        assert audit["actor"].startswith("ops:migrate-voices:")
        assert (audit["detail"]["from"], audit["detail"]["to"], audit["detail"]["reused"]) == (
            "elevenlabs",
            "selfhosted",
            None,
        )

        # Roll back: ElevenLabs still has the old voice, so it is taken back, not enrolled again.
        code, out = await run_migrate(capsys, db_dsn, "--to", "elevenlabs", "--apply")
        assert code == 0, out
        assert '"reused":1' in out
        await follow_until(client, alice, sql, rid, lambda s: s["voice"]["previewStatus"] == "ready")
        state = (await client.get(f"/v1/reflections/{rid}/voice", headers=alice.headers)).json()
        assert (state["voice"]["provider"], state["voice"]["providerVoiceId"]) == ("elevenlabs", eleven_voice)
        assert len(eleven.requests_to("POST", "/v1/voices/add")) == adds
        assert list(eleven.voices) == [eleven_voice]
        job = await speak(client, alice, {"voiceId": voice_id})
        assert job["status"] == "succeeded", job["error"]
        assert eleven.requests_to("POST", "/v1/text-to-speech")[-1].path == f"/v1/text-to-speech/{eleven_voice}"
        sources = [a["source"] for a in attempts_of(sql, voice_id)]
        assert sources == ["sample_upload", "provider_migration", "provider_migration"]
        rollback = attempts_of(sql, voice_id)[-1]
        assert (rollback["provider"], rollback["provider_voice_id"], rollback["status"]) == (
            "elevenlabs",
            eleven_voice,
            "ready",
        )


@pytest.mark.parametrize("selfhosted", [{"mode": "registry"}], indirect=True)
async def test_a_voice_the_provider_forgot_is_enrolled_again_and_the_job_waits_for_it(
    worker_client: Callable[..., Any],
    make_user: Callable[[], User],
    sql: Conn,
    selfhosted: tuple[SelfhostedFake, str],
) -> None:
    fake, url = selfhosted
    client = await worker_client(VOICE_PROVIDER="selfhosted", **selfhosted_env(url))
    user = make_user()
    sample_id = await ready_sample(client, user, seed=31)
    first = await speak(client, user, {"sampleId": sample_id})
    assert first["status"] == "succeeded", first["error"]
    lost = one(sql, "select provider_voice_id from voices")["provider_voice_id"]

    fake.reset()  # the server was reinstalled: it has no voices any more
    healed = await speak(client, user, {"voiceId": first["voiceId"]})

    assert healed["status"] == "succeeded", healed["error"]
    churn = attempts_of(sql, first["voiceId"])[-1]
    assert (churn["source"], churn["status"]) == ("provider_churn", "ready")
    assert healed["attemptId"] == str(churn["id"])
    assert list(fake.voices) == [churn["provider_voice_id"]]
    gone = one(sql, "select gone_reason from voice_provider_references where provider_voice_id = %s", (lost,))
    assert gone["gone_reason"] == "voice_not_found"
    audit = one(sql, "select actor, detail from voicegate.audit_events where action = 'voice.reenrol'")
    assert audit["actor"] == f"synthesis:{healed['jobId']}"
    assert audit["detail"]["sample_id"] == sample_id

    # Without its sample the voice cannot come back: the job says so.
    assert (await client.delete(f"/api/v1/voice-samples/{sample_id}", headers=user.headers)).status_code == 204
    fake.reset()
    failed = await speak(client, user, {"voiceId": first["voiceId"]})
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "sample_missing"
    assert "no stored sample remains" in failed["error"]["message"]
    assert len(attempts_of(sql, first["voiceId"])) == 2


@pytest.mark.parametrize(
    ("stale", "language"),
    [
        ("sonic-2-2025-03-07", "en"),  # a model sunset outright on 2026-06-01
        ("sonic-2", "it"),  # main's model for every voice, whose Italian was sunset that day
    ],
)
async def test_a_sunset_cartesia_model_makes_the_voice_enrol_again_for_a_current_one(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn, stale: str, language: str
) -> None:
    """Cartesia answers `model_sunsetted` (its documented body, fakes/cartesia.py) for the model, or
    for the voice's language on it: the job waits while the voice is cloned again from its sample for a
    model that speaks its language, then speaks. On main, whose adapter cloned every voice for `sonic-2`,
    the Italian voice was cloned for `sonic-2` again and the job failed (`voice_lost`)."""
    cartesia = CartesiaFake()
    with serve(cartesia) as url:
        client = await worker_client(
            VOICE_PROVIDER="cartesia", CARTESIA_API_KEY=cartesia.api_key, CARTESIA_BASE_URL=url
        )
        user = make_user()
        first = await speak(client, user, {"sampleId": await ready_sample(client, user, seed=61, language=language)})
        assert first["status"] == "succeeded", first["error"]
        old = one(sql, "select provider_voice_id, provider_target_model from voices")
        assert old["provider_target_model"] == "sonic-3.5"
        # As if it had been cloned for a model Cartesia has sunset since (for its language).
        sql.execute("update voices set provider_target_model = %s", (stale,))

        healed = await speak(client, user, {"voiceId": first["voiceId"]})

        assert healed["status"] == "succeeded", healed["error"]
        # Each new provider voice speaks its likeness probe (in the voice's language) before its first job.
        probe = probe_text(language)
        spoken = [(r.json()["model_id"], r.json()["transcript"] == probe) for r in cartesia.requests_to("POST", "/tts")]
        current = "sonic-3.5"
        assert spoken == [(current, True), (current, False), (stale, False), (current, True), (current, False)]
        churn = attempts_of(sql, first["voiceId"])[-1]
        assert (churn["source"], churn["status"]) == ("provider_churn", "ready")
        voice = one(sql, "select provider_voice_id, provider_target_model from voices")
        assert voice == {"provider_voice_id": churn["provider_voice_id"], "provider_target_model": "sonic-3.5"}
        assert voice["provider_voice_id"] != old["provider_voice_id"]
        gone = one(
            sql,
            "select gone_reason from voice_provider_references where provider_voice_id = %s",
            (old["provider_voice_id"],),
        )
        assert gone["gone_reason"] == "model_retired"


@pytest.mark.parametrize("selfhosted", [{"mode": "registry"}], indirect=True)
async def test_a_kept_sample_outlives_its_retention_as_its_cleaned_copy_and_goes_with_its_consent(
    worker_client: Callable[..., Any],
    make_user: Callable[[], User],
    sql: Conn,
    selfhosted: tuple[SelfhostedFake, str],
) -> None:
    fake, url = selfhosted
    client = await worker_client(
        VOICE_PROVIDER="selfhosted", VOICEGATE_MAINTENANCE_INTERVAL="0.2", **selfhosted_env(url)
    )
    user = make_user()
    kept_id = await ready_sample(client, user, seed=41, keep_sample="true")
    plain_id = await ready_sample(client, user, seed=42)
    kept_job, plain_job = [await speak(client, user, {"sampleId": s}) for s in (kept_id, plain_id)]
    status = (await client.get(f"/api/v1/voice-samples/{kept_id}/status", headers=user.headers)).json()
    assert status["keepSample"] is True
    consent = one(
        sql,
        "select c.keep_sample, c.consent_text_version from voice_consents c join voice_samples s"
        " on s.consent_id = c.id where s.id = %s",
        (kept_id,),
    )
    assert consent == {"keep_sample": True, "consent_text_version": "2026-12"}

    sql.execute("update voice_samples set expires_at = now() - interval '1 second'")
    deadline = time.monotonic() + 30
    while one(sql, "select count(*) as n from voice_samples where id = %s", (plain_id,))["n"]:
        assert time.monotonic() < deadline, "the sweep did not purge the expired sample"
        await asyncio.sleep(0.1)
    while (
        one(sql, "select original_removed_at from voice_samples where id = %s", (kept_id,))["original_removed_at"]
        is None
    ):
        assert time.monotonic() < deadline, "the sweep did not trim the kept sample"
        await asyncio.sleep(0.1)
    folder = f"{user.id}/samples/{kept_id}/"
    assert objects(sql, folder) == {f"voice-samples/{folder}processed.wav"}
    trim = one(sql, "select action, detail from voicegate.audit_events where subject_id = %s", (kept_id,))
    assert trim["action"] == "sample.trim"

    # Both voices lose their provider voice: the kept sample's comes back, the other's cannot.
    fake.reset()
    healed = await speak(client, user, {"voiceId": kept_job["voiceId"]})
    assert healed["status"] == "succeeded", healed["error"]
    lost = await speak(client, user, {"voiceId": plain_job["voiceId"]})
    assert (lost["status"], lost["error"]["code"]) == ("failed", "sample_missing")

    withdrawn = await client.delete(f"/api/v1/voice-samples/{kept_id}/keep", headers=user.headers)
    assert withdrawn.status_code == 204
    assert one(sql, "select count(*) as n from voice_samples where id = %s", (kept_id,))["n"] == 0
    assert objects(sql, folder) == set()
    assert (
        one(sql, "select keep_sample_withdrawn_at from voice_consents where keep_sample")["keep_sample_withdrawn_at"]
        is not None
    )
    again = await client.delete(f"/api/v1/voice-samples/{kept_id}/keep", headers=user.headers)
    assert again.status_code == 404


@pytest.mark.parametrize("selfhosted", [{"mode": "inline"}], indirect=True)
async def test_deleting_a_voice_purges_its_kept_sample_and_its_inline_reference(
    worker_client: Callable[..., Any],
    make_user: Callable[[], User],
    sql: Conn,
    selfhosted: tuple[SelfhostedFake, str],
) -> None:
    _, url = selfhosted
    client = await worker_client(VOICE_PROVIDER="selfhosted", **selfhosted_env(url))
    user = make_user()
    kept_id = await ready_sample(client, user, seed=51, keep_sample="true")
    job = await speak(client, user, {"sampleId": kept_id})
    assert job["status"] == "succeeded", job["error"]
    assert one(sql, "select count(*) as n from voicegate.selfhosted_voices")["n"] == 1
    stranger = await client.delete(f"/api/v1/voice-samples/{kept_id}/keep", headers=make_user().headers)
    assert stranger.status_code == 404
    plain_id = await ready_sample(client, user, seed=52)
    not_kept = await client.delete(f"/api/v1/voice-samples/{plain_id}/keep", headers=user.headers)
    assert (not_kept.status_code, not_kept.json()["code"]) == (409, "conflict")
    assert one(sql, "select count(*) as n from voice_samples where id = %s", (plain_id,))["n"] == 1

    deleted = await client.delete(f"/api/voices/{job['voiceId']}", headers=user.headers)

    assert deleted.status_code == 204
    assert one(sql, "select id from voice_samples")["id"] == uuid.UUID(plain_id)  # never cloned: not kept
    assert objects(sql, f"{user.id}/samples/{kept_id}/") == set()
    assert one(sql, "select count(*) as n from voicegate.selfhosted_voices")["n"] == 0
    purge = one(sql, "select actor, detail from voicegate.audit_events where action = 'sample.purge'")
    assert (purge["actor"], purge["detail"]["reason"]) == (f"user:{user.id}", "voice_deleted")
