"""Each route family speaks one casing, pinned here from the OpenAPI document: every member name of a request
body (JSON or multipart) and of a success answer under `/api/` (but not `/api/v1/`) is snake_case, as the seeds'
contracts for `/api/clone/...` and `/api/voices` name them; everywhere else (`/api/v1/...`, `/v1/...`, the page's
`/config.json` and `/dev/session`, health) camelCase, as the PRD's `/api/v1` contract names them. The exceptions
are listed with why, and docs/api-casing.md names each of them; the lists only shrink (an entry no longer needed
fails the test until it goes)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from backend.app import create_app
from backend.clone.types import StartedClone
from backend.domain.attempts import AttemptStatus
from backend.reflections.types import QueuedClone
from backend.settings import settings_from_env
from backend.voices.types import FinalizedClone
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED

ROOT = Path(__file__).resolve().parents[3]
SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
CAMEL = re.compile(r"[a-z][a-zA-Z0-9]*")
#: Where a name is: a component schema's name, or `form` for a multipart body's fields.
FORM = "form"

#: camelCase names under `/api/` (snake_case): routes added for the studio page after the seeds' contracts,
#: which take and give the `/api/v1` family's shapes (the page reads both families with the same code) and
#: which clients use as they are. Renaming them would break those clients; new `/api/` routes speak snake_case.
CAMEL_UNDER_API: dict[str, frozenset[str]] = {
    # GET /api/voices/{id}/clips: the synthesis jobs of `/api/v1/clone`, listed.
    "Clip": frozenset({"jobId", "durationMs", "createdAt", "finishedAt"}),
    "ClipPage": frozenset({"nextCursor"}),
    # POST /api/voices, GET and PUT /api/voices/{id}/samples: a voice from `/api/v1/voice-samples` samples.
    "NewVoiceBody": frozenset({"sampleIds", "consentId"}),
    "SamplesBody": frozenset({"sampleIds", "consentId"}),
    "VoiceSamples": frozenset({"voiceId", "sampleIds", "attemptId", "attemptStatus"}),
    "SetReport": frozenset({"sampleCount", "speechS", "loudnessSpreadLu", "pitchSpreadSemitones"}),
    "SetSample": frozenset({"sampleId", "speechS", "loudnessLufs", "medianPitchHz"}),
    "SetWarning": frozenset({"sampleId"}),
    # GET /api/voices/{id}/preview: the same `{audioUrl}` as `/api/v1/clone/{id}/result`.
    "VoicePreview": frozenset({"audioUrl", "expiresIn"}),
}
#: snake_case names elsewhere (camelCase).
SNAKE_ELSEWHERE: dict[str, frozenset[str]] = {
    # PATCH /v1/reflections/{id}/voice: the seeds' contract names its body `{provider, voice_id}`.
    "CustomVoice": frozenset({"voice_id"}),
    # The sample upload's multipart fields (`POST /api/v1/voice-samples`, `POST /v1/reflections/{id}/voice/clone`,
    # one reader for both): form fields, named as the page's form and the seeds' `/api/clone` fields are.
    FORM: frozenset({"keep_sample", "subject_name"}),
}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data_dir: Path = tmp_path_factory.mktemp("docs")
    settings = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": str(data_dir)}), {"SUPABASE_JWT_SECRET": "s" * 40}
    )
    return create_app(settings, "postgresql://nobody@127.0.0.1:1/none", embedded=EMBEDDED).openapi_schema.to_schema()


def snake_family(path: str) -> bool:
    """`/api/...` but not `/api/v1/...`: the seeds' snake_case contracts."""
    return path.startswith("/api/") and not path.startswith("/api/v1/")


def member_names(schema: Any, components: dict[str, Any], where: str, seen: set[str]) -> Iterator[tuple[str, str]]:
    """(where, name) of every object member `schema` can hold, through references, arrays and unions; `where`
    is the component it is declared in."""
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name not in seen:
            seen.add(name)
            yield from member_names(components[name], components, name, seen)
        return
    for member, inner in schema.get("properties", {}).items():
        yield where, member
        yield from member_names(inner, components, where, seen)
    for key in ("items", "additionalProperties"):
        yield from member_names(schema.get(key), components, where, seen)
    for key in ("oneOf", "anyOf", "allOf"):
        for inner in schema.get(key, []):
            yield from member_names(inner, components, where, seen)


def names_by_route(document: dict[str, Any]) -> Iterator[tuple[str, str, set[tuple[str, str]]]]:
    """Each operation's request body and success answers' member names (errors are problem+json, shared)."""
    components = document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            names: set[tuple[str, str]] = set()
            for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
                where = FORM if media_type == "multipart/form-data" else "body"
                names |= set(member_names(media.get("schema"), components, where, set()))
            for status, answer in operation["responses"].items():
                if int(status) < 400:
                    for media in answer.get("content", {}).values():
                        names |= set(member_names(media.get("schema"), components, "answer", set()))
            yield method.upper(), path, names


def test_each_route_family_speaks_its_casing(document: dict[str, Any]) -> None:
    wrong: list[str] = []
    used: set[tuple[str, str]] = set()
    for method, path, names in names_by_route(document):
        snake = snake_family(path)
        casing, allowed = (SNAKE, CAMEL_UNDER_API) if snake else (CAMEL, SNAKE_ELSEWHERE)
        for where, name in sorted(names):
            if casing.fullmatch(name):
                continue
            if name in allowed.get(where, frozenset()):
                used.add((where, name))
            else:
                wrong.append(f"{method} {path}: {where}.{name} is not {'snake_case' if snake else 'camelCase'}")
    assert wrong == []
    listed = {
        (where, name)
        for lists in (CAMEL_UNDER_API, SNAKE_ELSEWHERE)
        for where, names in lists.items()
        for name in names
    }
    assert listed - used == set(), "allowed but no longer needed: drop them from the lists"


def test_both_families_were_checked(document: dict[str, Any]) -> None:
    routes = {(method, path): names for method, path, names in names_by_route(document)}
    # The seeds' contracts, one of each family: what the test above sees is what a client sends and reads.
    assert {name for _, name in routes[("POST", "/api/clone/finalize")]} >= {
        "voice_id",
        "reflection_id",
        "sniffed_type",
    }
    assert {name for _, name in routes[("POST", "/api/v1/clone")]} >= {"sampleId", "voiceId", "jobId"}
    assert {name for _, name in routes[("GET", "/api/v1/attempts/{attempt_id}")]} >= {"reflectionId", "runtimeStatus"}


def test_the_casing_page_names_every_exception() -> None:
    page = (ROOT / "docs" / "api-casing.md").read_text()
    for lists in (CAMEL_UNDER_API, SNAKE_ELSEWHERE):
        for where, names in lists.items():
            for name in names:
                assert f"`{name}`" in page, f"docs/api-casing.md does not name {where}.{name}"
    for family in ("`/api/clone/...`", "`/api/voices`", "`/api/v1/...`", "`/v1/...`"):
        assert family in page


def test_the_two_answers_of_a_started_clone_send_their_family_s_names(document: dict[str, Any]) -> None:
    # One declaration (`StartedClone`), two casings: FinalizedClone inherits it, QueuedClone is its camelCase twin
    # (`backend.casing.camel_case`). What each route sends, in the declared order, and its schema's names.
    ids = [uuid.UUID(int=n) for n in (1, 2, 3)]
    values = [*map(str, ids), "elevenlabs", "queued", "audio/wav"]
    answers: dict[type[StartedClone], list[str]] = {
        FinalizedClone: ["voice_id", "attempt_id", "sample_id", "provider", "status", "sniffed_type"],
        QueuedClone: ["voiceId", "attemptId", "sampleId", "provider", "status", "sniffedType"],
    }
    for answer, names in answers.items():
        sent = msgspec.json.decode(msgspec.json.encode(answer(*ids, "elevenlabs", AttemptStatus.QUEUED, "audio/wav")))
        assert list(sent.items()) == list(zip(names, values, strict=True))
        schema = document["components"]["schemas"][answer.__name__]
        assert sorted(schema["properties"]) == sorted(schema["required"]) == sorted(names)
    assert issubclass(QueuedClone, StartedClone)
    assert QueuedClone.__doc__ == (
        "`202` of `POST /v1/reflections/{id}/voice/clone`: the stored sample and its queued clone attempt."
    )
