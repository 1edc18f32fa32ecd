"""What a client generator makes of the OpenAPI document with no configuration of its own: openapi-python-client
(the generator the README names) reads every audio answer as bytes (each declares `application/octet-stream`
beside its audio types, which it cannot read), makes one `Provider` enum (every `provider` a request sends refers
to one component), and has `GET /api/v1/attempts/{id}` with every status it answers."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, get_type_hints

import pytest
from litestar.datastructures import Accept

from backend.app import create_app
from backend.http.documents.openapi import OCTET_STREAM, audio_label
from backend.providers.config import PROVIDER_NAMES
from backend.settings import settings_from_env
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED

PACKAGE = "voicegate_nocfg"
AUDIO_ROUTES = {
    ("post", "/api/v1/speech"): "speech.api_v1_speech_speak",
    ("post", "/v1/reflections/{reflection_id}/speech"): "speech.v1_reflections_reflection_id_speech_speak",
    ("get", "/api/v1/clone/{job_id}/audio"): "synthesis.api_v1_clone_job_id_audio_audio",
}
PROVIDER_REF = {"$ref": "#/components/schemas/Provider"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data_dir: Path = tmp_path_factory.mktemp("docs")
    settings = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": str(data_dir)}), {"SUPABASE_JWT_SECRET": "s" * 40}
    )
    # Built from the handlers alone; no database is contacted.
    return create_app(settings, "postgresql://nobody@127.0.0.1:1/none", embedded=EMBEDDED).openapi_schema.to_schema()


@pytest.fixture(scope="module")
def generated(document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client openapi-python-client makes from the document with no config file (its default post hook,
    ruff, on the PATH as it would be where the generator is installed)."""
    root = tmp_path_factory.mktemp("generated")
    (root / "openapi.json").write_text(json.dumps(document))
    bin_dir = Path(sys.executable).parent
    made = subprocess.run(
        [bin_dir / "openapi-python-client", "generate", "--path", "openapi.json", "--meta", "none"],
        cwd=root,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = made.stdout + made.stderr
    assert made.returncode == 0, said
    # Nothing left out ("response will be omitted"), nothing warned about.
    assert "Warning" not in said, said
    (root / "voicegate_client").rename(root / PACKAGE)
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_every_audio_answer_is_bytes_to_a_generated_client(generated: ModuleType, document: dict[str, Any]) -> None:
    types = importlib.import_module(f"{PACKAGE}.types")
    for (method, path), module in AUDIO_ROUTES.items():
        content = document["paths"][path][method]["responses"]["200"]["content"]
        assert content[OCTET_STREAM] == {"schema": {"type": "string", "format": "binary"}}, path
        assert all(media["schema"] == content[OCTET_STREAM]["schema"] for media in content.values()), path
        assert any(media_type.startswith("audio/") for media_type in content), path
        parse = importlib.import_module(f"{PACKAGE}.api.{module}")._parse_response
        assert types.File in get_type_hints(parse)["return"].__args__, path


def test_one_provider_enum_serves_every_request(generated: ModuleType, document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["Provider"]["enum"] == list(PROVIDER_NAMES)
    assert schemas["FinalizeBody"]["properties"]["provider"] == {"oneOf": [PROVIDER_REF, {"type": "null"}]}
    assert schemas["CustomVoice"]["properties"]["provider"] == PROVIDER_REF
    for path in ("/api/v1/voice-samples", "/v1/reflections/{reflection_id}/voice/clone"):
        form = document["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert form["properties"]["provider"]["$ref"] == PROVIDER_REF["$ref"], path

    # In the generated client: one enum of the providers' names, and every body's `provider` is it.
    package = Path(generated.__file__).parent
    enums = [path.stem for path in (package / "models").glob("*.py") if '"elevenlabs"' in path.read_text()]
    assert enums == ["provider"]
    models = importlib.import_module(f"{PACKAGE}.models")
    assert [member.value for member in models.Provider] == sorted(PROVIDER_NAMES)
    bodies = (
        "FinalizeBody",
        "CustomVoice",
        "ApiV1VoiceSamplesUploadBody",
        "V1ReflectionsReflectionIdVoiceCloneCloneBody",
    )
    for body in bodies:
        assert "Provider" in str(get_type_hints(getattr(models, body))["provider"]), body


def test_an_attempt_by_id_is_documented_with_every_answer(document: dict[str, Any]) -> None:
    operation = document["paths"]["/api/v1/attempts/{attempt_id}"]["get"]
    by_reflection = document["paths"]["/v1/reflections/{reflection_id}/voice-clone-attempts/{attempt_id}"]["get"]
    assert set(operation["responses"]) == {"200", "400", "401", "404", "429", "503"}
    assert operation["responses"]["200"]["content"] == by_reflection["responses"]["200"]["content"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Attempt"
    }
    assert operation["security"] == [{"bearer": []}]


@pytest.mark.parametrize(
    ("accept", "label"),
    [
        (None, "audio/wav"),
        ("*/*", "audio/wav"),
        ("audio/*", "audio/wav"),
        ("application/json", "audio/wav"),
        (OCTET_STREAM, OCTET_STREAM),
        (f"audio/wav;q=0.5, {OCTET_STREAM}", OCTET_STREAM),
        (f"{OCTET_STREAM};q=0.1, */*", "audio/wav"),
    ],
)
def test_audio_is_labelled_as_the_accept_header_prefers(accept: str | None, label: str) -> None:
    assert audio_label(Accept(accept or "*/*"), "audio/wav") == label
