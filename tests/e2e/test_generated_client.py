"""A client nobody on this project wrote: `openapi-python-client` generates one, offline, from the document the
app serves, and the PRD flow, the upload-URL flow and the reflection flow run through its typed models only
(with the consumers running). What a generated client needs of the document shows here: `keep_sample` in the
multipart body, the reflection's `voice` typed down to `previewStatus`, the finalize 202, the problem's
`blockingReasons`, and the audio routes as bytes with no content-type overrides."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest

from devkit.audio_corpus import speech_wav
from tests.conftest import PgServer, cloned_database
from tests.e2e.conftest import served_app
from tests.integration.api.conftest import User

pytestmark = pytest.mark.timeout(180)
PACKAGE = "voicegate_generated"
#: The package's name, and no post hooks: nothing about audio (each audio answer declares
#: `application/octet-stream` too, which the generator reads as bytes).
CONFIG = f"""package_name_override: {PACKAGE}
post_hooks: []
"""
#: Longest wait for a sample check, a clone or a job on a loaded 2-core machine.
SETTLE_SECONDS = 90.0
T = TypeVar("T")


class Generated:
    """The generated package: `api("samples.api_v1_voice_samples_upload")`, `models.SampleAccepted`, …"""

    def __init__(self, root: ModuleType) -> None:
        self.root = root
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.types = importlib.import_module(f"{PACKAGE}.types")

    def api(self, name: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.api.{name}")


@pytest.fixture(scope="module")
def generated(pg_server: PgServer, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    """The client generated once for the module from the document the app serves at `/schema/openapi.json`."""
    root = tmp_path_factory.mktemp("generated")
    with cloned_database(pg_server, template_db) as dsn, served_app(dsn, root / "data") as url:
        document = httpx.get(f"{url}/schema/openapi.json", timeout=30)
    assert document.status_code == 200, document.text
    (root / "openapi.json").write_bytes(document.content)
    (root / "config.yaml").write_text(CONFIG)
    generator = Path(sys.executable).with_name("openapi-python-client")
    made = subprocess.run(
        [generator, "generate", "--path", "openapi.json", "--config", "config.yaml", "--meta", "none"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    # Every route's answers are in the client: nothing "omitted from generated client".
    assert "omitted" not in made.stdout + made.stderr, made.stdout + made.stderr
    sys.path.insert(0, str(root))
    try:
        yield Generated(importlib.import_module(PACKAGE))
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


@pytest.fixture
def base_url(db_dsn: str, tmp_path: Path) -> Iterator[str]:
    """The app with its consumers, on a real port."""
    with served_app(db_dsn, tmp_path / "data", consumers=True) as url:
        yield url


@pytest.fixture
def client(generated: Generated, base_url: str, make_user: Callable[[], User]) -> Iterator[Any]:
    """The generated client for a new user, closed (with its connections) after the test."""
    user = make_user()
    with generated.root.AuthenticatedClient(base_url=base_url, token=user.token, timeout=httpx.Timeout(30.0)) as opened:
        yield opened


def parsed(response: Any, status: int, kind: type[T]) -> T:
    """The typed body of a generated call's detailed response, which must be `status` and a `kind`."""
    assert response.status_code == status, response.content
    assert isinstance(response.parsed, kind), response.parsed
    return response.parsed


def settled(poll: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    """Poll until `done` holds for the typed answer (bounded)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        answer = poll()
        if done(answer):
            return answer
        assert time.monotonic() < deadline, f"{what}: still {answer!r} after {SETTLE_SECONDS} s"
        time.sleep(0.1)


def recording(gen: Generated, data: bytes) -> Any:
    return gen.types.File(payload=io.BytesIO(data), file_name="me.wav", mime_type="audio/wav")


def test_the_prd_flow_through_the_generated_client(generated: Generated, client: Any) -> None:
    gen, models = generated, generated.models

    body = models.ApiV1VoiceSamplesUploadBody(
        file=recording(gen, speech_wav()), consent=True, language="en", keep_sample=True
    )
    accepted = parsed(
        gen.api("samples.api_v1_voice_samples_upload").sync_detailed(client=client, body=body),
        202,
        models.SampleAccepted,
    )
    assert accepted.status == models.VoiceSampleStatus.PENDING

    status = gen.api("samples.api_v1_voice_samples_sample_id_status_status")
    sample = settled(
        lambda: parsed(status.sync_detailed(accepted.sample_id, client=client), 200, models.SampleStatus),
        lambda s: s.status in {models.VoiceSampleStatus.READY, models.VoiceSampleStatus.FAILED},
        "the sample's check",
    )
    assert sample.status == models.VoiceSampleStatus.READY, sample.failure_reason
    assert sample.keep_sample is True
    assert isinstance(sample.quality, models.QualityReport)
    assert sample.quality.duration_s > 3

    job = parsed(
        gen.api("synthesis.api_v1_clone_create").sync_detailed(
            client=client, body=models.JobRequest(text="Hello there.", sample_id=accepted.sample_id)
        ),
        202,
        models.JobAccepted,
    )
    job_status = gen.api("synthesis.api_v1_clone_job_id_status_status")
    ended = {models.SynthesisJobStatus.SUCCEEDED, models.SynthesisJobStatus.FAILED}
    finished = settled(
        lambda: parsed(job_status.sync_detailed(job.job_id, client=client), 200, models.JobStatus),
        lambda j: j.status in ended,
        "the synthesis job",
    )
    assert finished.status == models.SynthesisJobStatus.SUCCEEDED, finished.error

    result = parsed(
        gen.api("synthesis.api_v1_clone_job_id_result_result").sync_detailed(job.job_id, client=client),
        200,
        models.JobResult,
    )
    assert (result.mime_type, urlsplit(result.audio_url).path.endswith(f"/{job.job_id}.wav")) == ("audio/wav", True)
    # The audio itself, as the generator reads it with no content-type overrides: bytes.
    audio = parsed(
        gen.api("synthesis.api_v1_clone_job_id_audio_audio").sync_detailed(job.job_id, client=client),
        200,
        gen.types.File,
    )
    assert audio.payload.read(4) == b"RIFF"


def test_the_upload_url_flow_answers_a_typed_202(generated: Generated, client: Any) -> None:
    gen, models = generated, generated.models

    ticket = parsed(
        gen.api("clone.api_clone_upload_url_upload_url").sync_detailed(
            client=client, body=models.UploadUrlBody(name="Dana", consent=True, language="en")
        ),
        201,
        models.UploadTicket,
    )
    # The upload itself goes to Storage (supabase-js's uploadToSignedUrl), not to a route of this document.
    signed = urlsplit(ticket.upload_url)
    put = client.get_httpx_client().put(
        f"{signed.path}?{signed.query}", content=speech_wav(seed=3), headers={"content-type": "audio/wav"}
    )
    assert put.status_code == 200, put.text

    finalized = parsed(
        gen.api("clone.api_clone_finalize_finalize").sync_detailed(
            client=client, body=models.FinalizeBody(voice_id=ticket.voice_id)
        ),
        202,
        models.FinalizedClone,
    )
    assert (finalized.voice_id, finalized.status) == (ticket.voice_id, models.AttemptStatus.QUEUED)


def test_the_reflection_flow_through_the_generated_client(generated: Generated, client: Any) -> None:
    gen, models = generated, generated.models

    reflection = parsed(
        gen.api("reflections.v1_reflections_create").sync_detailed(
            client=client, body=models.ReflectionCreate(name="Ada")
        ),
        201,
        models.Reflection,
    )
    assert isinstance(reflection.voice, models.VoiceMirror)
    assert (reflection.voice.clone_status, reflection.voice.attempt_id) == (models.MirrorCloneStatus.NONE, None)

    body = models.V1ReflectionsReflectionIdVoiceCloneCloneBody(
        file=recording(gen, speech_wav()), consent=True, language="en", keep_sample=True
    )
    queued = parsed(
        gen.api("reflections.v1_reflections_reflection_id_voice_clone_clone").sync_detailed(
            reflection.id, client=client, body=body
        ),
        202,
        models.QueuedClone,
    )
    launch = gen.api("reflections.v1_reflections_reflection_id_sessions_launch")
    blocked = parsed(launch.sync_detailed(reflection.id, client=client), 409, models.ProblemDetails)
    assert blocked.code == "launch_blocked"
    assert "clone_not_ready" in blocked.blocking_reasons

    voice_state = gen.api("reflections.v1_reflections_reflection_id_voice_state")
    state = settled(
        lambda: parsed(voice_state.sync_detailed(reflection.id, client=client), 200, models.VoiceState),
        lambda s: s.voice.preview_status == models.PreviewStatus.READY or s.voice.last_error is not None,
        "the reflection's preview",
    )
    assert isinstance(state.voice, models.VoiceMirror)
    assert state.voice.last_error is None
    assert (state.voice.clone_status, state.voice.runtime_status) == (
        models.MirrorCloneStatus.READY,
        models.MirrorRuntimeStatus.SYNCED,
    )
    assert (state.voice.attempt_id, state.voice.preview_required) == (queued.attempt_id, True)
    assert (state.launch_ready, state.blocking_reasons) == (False, ["preview_required"])
    assert isinstance(state.preview_url, str)

    completed = parsed(
        gen.api("reflections.v1_reflections_reflection_id_voice_preview_complete_complete_preview").sync_detailed(
            reflection.id, client=client
        ),
        200,
        models.Attempt,
    )
    assert completed.preview_status == models.PreviewStatus.COMPLETED
    session = parsed(launch.sync_detailed(reflection.id, client=client), 201, models.Session)
    assert (session.attempt_id, session.launch_ready) == (queued.attempt_id, True)
    assert isinstance(session.runtime, models.RuntimeVoice)
    assert session.runtime.voice_id == queued.voice_id
