"""Every file voicegate synthesizes (renders and previews; WAV, and the MP3 a provider speaks a preview in)
carries a C2PA manifest that c2pa's own Reader finds: made by a trained model (`c2pa.created`,
trainedAlgorithmicMedia) and voicegate's assertion naming the voice, provider, model and consent.
A file altered after signing no longer validates; a job whose audio cannot be signed fails with
`provenance_failed` and stores nothing. The voice manifest JSON (`voice-metadata/{owner}/{voice}.json`)
exists once a voice is cloned, matches its row, and goes with the voice."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import c2pa
import pytest
from litestar.testing import AsyncTestClient

from backend.clone.manifest import BUCKET as METADATA_BUCKET
from backend.policy.consent import CONSENT_TEXT_VERSION
from backend.provenance import SYNTHESIS_ASSERTION, TRAINED_ALGORITHMIC_MEDIA
from backend.provenance.verify import c2pa_settings
from backend.providers.local.provider import MODEL
from backend.voiceprint import THRESHOLD
from devkit.audio_corpus import speech_wav
from devkit.db import Conn, one
from fakes import ElevenLabsFake, serve
from tests.e2e.conftest import elevenlabs_env
from tests.integration.api.conftest import User

Client = AsyncTestClient  # type: ignore[type-arg]
pytestmark = pytest.mark.timeout(120)
MODELS = {"local": MODEL, "elevenlabs": "eleven_multilingual_v2"}


async def poll(client: Client, user: User, path: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        response = await client.get(path, headers=user.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"stuck: {body}"


async def fetch(client: Client, url: str) -> bytes:
    """A signed Storage URL's object, fetched from the app in-process."""
    response = await client.get("/storage/v1" + url.split("/storage/v1", 1)[1])
    assert response.status_code == 200, response.text
    return response.content


def read_back(data: bytes, mime: str, data_dir: Path) -> dict[str, Any]:
    """The manifest store as c2pa's Reader reports it, trusting the development CA of `data_dir`."""
    anchors = (data_dir / "c2pa-dev" / "ca.pem").read_bytes()
    with (
        c2pa.Context.from_dict(c2pa_settings(anchors)) as context,
        c2pa.Reader(mime, io.BytesIO(data), context=context) as reader,
    ):
        store: dict[str, Any] = json.loads(reader.json())
    return store


def assertion(store: dict[str, Any], label: str) -> dict[str, Any]:
    active = store["manifests"][store["active_manifest"]]
    (data,) = [item["data"] for item in active["assertions"] if item["label"] == label]
    return data  # type: ignore[no-any-return]


def assert_made_by_voicegate(store: dict[str, Any], *, voice_id: str, provider: str, consent: dict[str, Any]) -> None:
    assert store["validation_state"] == "Trusted", store.get("validation_results")
    (created,) = assertion(store, "c2pa.actions.v2")["actions"]
    assert (created["action"], created["digitalSourceType"]) == ("c2pa.created", TRAINED_ALGORITHMIC_MEDIA)
    ours = assertion(store, SYNTHESIS_ASSERTION)
    assert {key: ours[key] for key in ("voice_id", "provider", "model", "consent_id", "consent_version")} == {
        "voice_id": voice_id,
        "provider": provider,
        "model": MODELS[provider],
        "consent_id": str(consent["consent_id"]),
        "consent_version": consent["consent_version"],
    }


def consent_of(sql: Conn, voice_id: str) -> dict[str, Any]:
    return one(
        sql,
        "select v.consent_id, c.consent_text_version as consent_version from voices v"
        " join voice_consents c on c.id = v.consent_id where v.id = %s",
        (voice_id,),
    )


def mime_of(data: bytes) -> str:
    return "audio/wav" if data[:4] == b"RIFF" else "audio/mpeg"


async def preview_and_render(client: Client, user: User, tmp_path: Path, sql: Conn, provider: str) -> None:
    """A reflection's voice cloned with `provider`: its preview, then a job's render, both read back."""
    reflection = (await client.post("/v1/reflections", json={"name": "Ada"}, headers=user.headers)).json()["id"]
    cloned = await client.post(
        f"/v1/reflections/{reflection}/voice/clone",
        data={"consent": "true", "language": "en", "provider": provider},
        files={"file": ("me.wav", speech_wav(), "audio/wav")},
        headers=user.headers,
    )
    assert cloned.status_code == 202, cloned.text
    state = await poll(
        client, user, f"/v1/reflections/{reflection}/voice", lambda s: s["voice"]["previewStatus"] == "ready"
    )
    assert state["provenance"] == "c2pa"
    voice_id = state["voice"]["voiceId"]
    consent = consent_of(sql, voice_id)
    assert consent["consent_version"] == CONSENT_TEXT_VERSION

    preview = await fetch(client, state["previewUrl"])
    assert mime_of(preview) == ("audio/mpeg" if provider == "elevenlabs" else "audio/wav")
    store = read_back(preview, mime_of(preview), tmp_path)
    assert_made_by_voicegate(store, voice_id=voice_id, provider=provider, consent=consent)

    job = await client.post("/api/v1/clone", json={"voiceId": voice_id, "text": "Hello there."}, headers=user.headers)
    assert job.status_code == 202, job.text
    status = await poll(
        client, user, f"/api/v1/clone/{job.json()['jobId']}/status", lambda j: j["status"] in {"succeeded", "failed"}
    )
    assert (status["status"], status["provenance"]) == ("succeeded", "c2pa"), status["error"]
    result = (await client.get(f"/api/v1/clone/{job.json()['jobId']}/result", headers=user.headers)).json()
    assert (result["mimeType"], result["provenance"]) == ("audio/wav", "c2pa")
    render = await fetch(client, result["audioUrl"])
    assert_made_by_voicegate(
        read_back(render, "audio/wav", tmp_path), voice_id=voice_id, provider=provider, consent=consent
    )
    voice = (await client.get(f"/api/voices/{voice_id}", headers=user.headers)).json()
    assert (voice["status"], voice["provenance"]) == ("ready", "c2pa")


async def test_local_previews_and_renders_carry_their_manifest(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn, tmp_path: Path
) -> None:
    client = await worker_client()
    await preview_and_render(client, make_user(), tmp_path, sql, "local")


async def test_an_mp3_preview_carries_its_manifest_too(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn, tmp_path: Path
) -> None:
    fake = ElevenLabsFake()
    with serve(fake) as url:
        client = await worker_client(**elevenlabs_env(fake, url))
        await preview_and_render(client, make_user(), tmp_path, sql, "elevenlabs")


async def cloned_job(client: Client, user: User) -> tuple[str, dict[str, Any]]:
    """A sample uploaded and spoken with: the job's id and its final status."""
    accepted = await client.post(
        "/api/v1/voice-samples",
        data={"consent": "true", "language": "en"},
        files={"file": ("me.wav", speech_wav(), "audio/wav")},
        headers=user.headers,
    )
    assert accepted.status_code == 202, accepted.text
    job = await client.post(
        "/api/v1/clone", json={"sampleId": accepted.json()["sampleId"], "text": "Hello there."}, headers=user.headers
    )
    assert job.status_code == 202, job.text
    job_id = job.json()["jobId"]
    status = await poll(
        client, user, f"/api/v1/clone/{job_id}/status", lambda j: j["status"] in {"succeeded", "failed"}
    )
    return job_id, status


def flip_a_sample(wav: bytes) -> bytes:
    """The WAV with one audio byte changed (after the `data` chunk header, before the C2PA chunk)."""
    position = wav.index(b"data") + 8 + 1000
    return wav[:position] + bytes([wav[position] ^ 0x55]) + wav[position + 1 :]


async def test_a_render_altered_after_signing_fails_validation(
    worker_client: Callable[..., Any], make_user: Callable[[], User], tmp_path: Path
) -> None:
    client = await worker_client()
    user = make_user()
    job_id, status = await cloned_job(client, user)
    assert status["status"] == "succeeded", status["error"]
    result = (await client.get(f"/api/v1/clone/{job_id}/result", headers=user.headers)).json()
    signed = await fetch(client, result["audioUrl"])
    assert read_back(signed, "audio/wav", tmp_path)["validation_state"] == "Trusted"

    store = read_back(flip_a_sample(signed), "audio/wav", tmp_path)

    assert store["validation_state"] == "Invalid"
    failures = {item["code"] for item in store["validation_results"]["activeManifest"]["failure"]}
    assert "assertion.dataHash.mismatch" in failures


async def test_audio_that_cannot_be_signed_is_never_stored(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    client = await worker_client()
    client.app.state.worker_context.signer.close()  # what c2pa refusing every file looks like to the worker
    user = make_user()

    job_id, status = await cloned_job(client, user)

    assert (status["status"], status["provenance"]) == ("failed", None)
    assert status["error"] == {
        "code": "provenance_failed",
        "message": "The audio could not be signed with its C2PA manifest, so it was not stored.",
    }
    refused = await client.get(f"/api/v1/clone/{job_id}/result", headers=user.headers)
    assert (refused.status_code, refused.json()["code"]) == (409, "synthesis_failed")
    assert one(sql, "select count(*) as n from storage.objects where bucket_id = 'voice-renders'")["n"] == 0


def metadata_objects(sql: Conn) -> list[str]:
    return [row[0] for row in sql.execute("select name from storage.objects where bucket_id = %s", (METADATA_BUCKET,))]


async def test_the_voice_manifest_follows_the_voice(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    client = await worker_client()
    user = make_user()
    _, status = await cloned_job(client, user)
    assert status["status"] == "succeeded", status["error"]
    voice_id = status["voiceId"]
    path = f"{user.id}/{voice_id}.json"
    assert metadata_objects(sql) == [path]

    manifest = json.loads(await client.app.state.storage.download(METADATA_BUCKET, path))

    row = one(
        sql,
        "select v.*, c.consent_text_version, s.id as sample_id, s.quality_report ->> 'verdict' as verdict,"
        " a.likeness, a.likeness_baseline from voices v join voice_consents c on c.id = v.consent_id"
        " join voice_samples s on s.voice_id = v.id"
        " join voice_clone_attempts a on a.voice_id = v.id and a.status = 'ready' where v.id = %s",
        (voice_id,),
    )
    assert manifest == {
        "voiceId": voice_id,
        "provider": row["tts_provider"],
        "providerVoiceId": row["provider_voice_id"],
        "targetModel": row["provider_target_model"],
        "createdAt": manifest["createdAt"],
        "updatedAt": manifest["updatedAt"],
        "consentId": str(row["consent_id"]),
        "consentVersion": row["consent_text_version"],
        "sampleId": str(row["sample_id"]),
        "sampleVerdict": row["verdict"],
        "likeness": row["likeness"],
        "likenessThreshold": THRESHOLD,
        "likenessSource": "probe",
        "likenessError": None,
        "likenessBaseline": row["likeness_baseline"],
    }
    assert 0 < manifest["likeness"] < 1, "the local voice's likeness to its sample, judged on the probe"
    assert 0 < manifest["likenessBaseline"] < 1, "and the bundled voice's, unadapted, beside it"
    assert (row["tts_provider"], row["status"]) == ("local", "ready")
    assert row["verdict"] in {"good", "usable"}
    assert datetime.fromisoformat(manifest["createdAt"]) == row["created_at"]
    assert datetime.fromisoformat(manifest["updatedAt"]) == row["updated_at"]
    # A private bucket: its owner may read it through Storage, nobody else may.
    url = f"/storage/v1/object/authenticated/{METADATA_BUCKET}/{path}"
    own = await client.get(url, headers=user.headers)
    assert (own.status_code, json.loads(own.content)) == (200, manifest)
    assert (await client.get(url, headers=make_user().headers)).status_code != 200
    assert (await client.get(f"/storage/v1/object/public/{METADATA_BUCKET}/{path}")).status_code != 200

    deleted = await client.delete(f"/api/voices/{voice_id}", headers=user.headers)

    assert deleted.status_code == 204
    assert metadata_objects(sql) == []
    assert one(sql, "select deleted_at is not null as gone from voices where id = %s", (voice_id,))["gone"]
