"""The OpenAPI document is valid OpenAPI 3.1 and says what a client generator and Swagger's "Try it out"
need: the bearer scheme on every user route, the multipart body of the sample uploads, every error
status as problem+json, the Idempotency-Key header, and `/metrics` as plain text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate

from backend.app import create_app
from backend.domain.attempts import VoiceMirror
from backend.samples.upload import SampleForm
from backend.settings import settings_from_env
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED

UNAUTHENTICATED = {"/healthz", "/readyz", "/metrics", "/config.json", "/dev/session"}
UPLOADS = {("post", "/api/v1/voice-samples"), ("post", "/v1/reflections/{reflection_id}/voice/clone")}
IDEMPOTENT = {
    ("post", "/api/v1/voice-samples"),
    ("post", "/v1/reflections/{reflection_id}/voice/clone"),
    ("post", "/api/clone/finalize"),
    ("post", "/api/v1/clone"),
    ("post", "/v1/reflections/{reflection_id}/voice/retry"),
}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data_dir: Path = tmp_path_factory.mktemp("docs")
    settings = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": str(data_dir)}), {"SUPABASE_JWT_SECRET": "s" * 40}
    )
    # The document is built from the handlers alone; no database is contacted.
    return create_app(settings, "postgresql://nobody@127.0.0.1:1/none", embedded=EMBEDDED).openapi_schema.to_schema()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in document["paths"].items() for method, op in item.items()]


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_every_user_route_takes_the_bearer_token(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    for method, path, op in operations(document):
        expected = None if path in UNAUTHENTICATED else [{"bearer": []}]
        assert op.get("security") == expected, f"{method.upper()} {path}"


def test_every_error_is_documented_as_problem_json(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                content = response.get("content", {})
                assert list(content) == ["application/problem+json"], f"{method.upper()} {path} {status}"
                assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}
        # A bad Host header is answered 400 on every route.
        assert "400" in op["responses"], f"{method.upper()} {path}"
        if path not in UNAUTHENTICATED:
            assert {"401", "429", "503"} <= set(op["responses"]), f"{method.upper()} {path}"


def test_every_route_that_reads_json_documents_what_the_entry_check_answers(document: dict[str, Any]) -> None:
    json_routes = [
        (method, path, op)
        for method, path, op in operations(document)
        if "application/json" in op.get("requestBody", {}).get("content", {})
    ]
    assert len(json_routes) >= 13
    for method, path, op in json_routes:
        assert {"401", "413", "415"} <= set(op["responses"]), f"{method.upper()} {path}"


def test_the_sample_uploads_document_their_multipart_body(document: dict[str, Any]) -> None:
    for method, path in UPLOADS:
        body = document["paths"][path][method]["requestBody"]
        schema = body["content"]["multipart/form-data"]["schema"]
        assert body["required"] is True
        # `consent` (the checkbox) or `consentId` (a spoken consent): which one, the server's policy says.
        assert schema["required"] == ["file"]
        assert schema["properties"]["file"] == {"type": "string", "format": "binary", "description": "The recording."}
        # Every field the route accepts is documented (`keep_sample` was accepted but missing), and no other.
        assert set(schema["properties"]) == {"file", *SampleForm.__struct_encode_fields__}
        assert {"413", "415"} <= set(document["paths"][path][method]["responses"])


def test_every_request_body_has_an_example_valid_against_its_schema(
    document: dict[str, Any], app_handlers: dict[str, Any]
) -> None:
    """What Swagger's "Try it out" fills in: without examples it makes the body up from the schema ("string" in
    every optional field, the clone body with both sampleId and voiceId), which the route refuses."""
    bodies = 0
    for method, path, op in operations(document):
        for media_type, media in op.get("requestBody", {}).get("content", {}).items():
            where = f"{method.upper()} {path} {media_type}"
            examples = media.get("examples", {})
            assert examples, f"{where} has no example"
            validator = Draft202012Validator(
                {**media["schema"], "components": document["components"]}, format_checker=FormatChecker()
            )
            for name, example in examples.items():
                errors = [error.message for error in validator.iter_errors(example["value"])]
                assert errors == [], f"{where} example {name!r}: {errors}"
                # The route decodes it as it would a request: the handler's body type, or the upload's text fields.
                if media_type == "application/json":
                    msgspec.convert(example["value"], app_handlers[op["operationId"]])
                else:
                    msgspec.convert({k: v for k, v in example["value"].items() if k != "file"}, SampleForm)
            # A form's fields: Swagger fills each from its own example ("string" for a text field without one).
            for field, schema in media["schema"].get("properties", {}).items():
                if schema.get("type") == "string" and schema.get("format") != "binary" and "enum" not in schema:
                    assert schema.get("examples"), f"{where} field {field} has no example"
                for value in schema.get("examples", []):
                    assert list(Draft202012Validator(schema).iter_errors(value)) == [], f"{where} field {field}"
            bodies += 1
    assert bodies == 17


@pytest.fixture(scope="module")
def app_handlers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The type each JSON-bodied handler decodes its body into, by operation id."""
    data_dir: Path = tmp_path_factory.mktemp("handlers")
    settings = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": str(data_dir)}), {"SUPABASE_JWT_SECRET": "s" * 40}
    )
    app = create_app(settings, "postgresql://nobody@127.0.0.1:1/none", embedded=EMBEDDED)
    types: dict[str, Any] = {}
    paths = app.openapi_schema.paths or {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            data = handler.parsed_fn_signature.parameters.get("data")
            item = paths.get(route.path_format)
            for method in handler.http_methods:
                op = getattr(item, method.lower(), None)
                if data is not None and op is not None:
                    types[op.operation_id] = data.annotation
    return types


def test_idempotent_routes_document_the_key_header(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        headers = [p["name"] for p in op.get("parameters", []) if p["in"] == "header"]
        assert ("Idempotency-Key" in headers) == ((method, path) in IDEMPOTENT), f"{method.upper()} {path}"


def test_metrics_are_plain_text(document: dict[str, Any]) -> None:
    assert list(document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]


def test_the_result_route_documents_that_an_altered_render_is_refused(document: dict[str, Any]) -> None:
    responses = document["paths"]["/api/v1/clone/{job_id}/result"]["get"]["responses"]
    assert "stored_object_altered" in responses["409"]["description"]


#: Every route that names a voice (makes one, or renames one): grep for the queries that insert or rename voices
#: (`backend/clone/start.sql`, `backend/voices/service.sql`) and follow them to their routes.
NAMES_A_VOICE = {
    ("post", "/api/clone/upload-url"),
    ("post", "/api/clone/finalize"),
    ("post", "/api/voices"),
    ("patch", "/api/voices/{voice_id}"),
    ("post", "/api/v1/clone"),
    ("post", "/v1/reflections/{reflection_id}/voice/clone"),
    ("patch", "/v1/reflections/{reflection_id}/voice"),
}


def test_every_route_that_names_a_voice_documents_the_name_taken(document: dict[str, Any]) -> None:
    for method, path in NAMES_A_VOICE:
        responses = document["paths"][path][method]["responses"]
        assert "`voice_name_taken`" in responses["409"]["description"], (method, path)
    others = {(m, p) for m, p, op in operations(document) if "voice_name_taken" in str(op)} - NAMES_A_VOICE
    assert others == set()


#: Every route that creates what a user may create only so many of (`backend.records.user_creates.CreateKind`): grep
#: for `user_creates.take` and follow it to its routes (a voice is made in `backend.clone.start._insert_voice`).
CREATES = {
    ("post", "/api/v1/consents"),
    ("post", "/api/v1/voice-samples/{sample_id}/reading"),
    ("post", "/v1/reflections"),
    ("post", "/v1/webhooks"),
    ("post", "/api/clone/upload-url"),
    ("post", "/api/voices"),
    ("post", "/api/v1/clone"),
    ("post", "/v1/reflections/{reflection_id}/voice/clone"),
    ("patch", "/v1/reflections/{reflection_id}/voice"),
}
#: The routes with a cap of their own on what the caller has open, and the refusal's code.
CAPS = {
    ("post", "/api/v1/consents"): "open_consents_limited",
    ("post", "/api/v1/voice-samples/{sample_id}/reading"): "open_consents_limited",
    ("post", "/api/clone/upload-url"): "draft_voices_limited",
}


def test_every_route_that_creates_documents_the_creates_refusal(document: dict[str, Any]) -> None:
    for method, path in CREATES:
        assert "`creates_limited`" in document["paths"][path][method]["responses"]["429"]["description"], path
    others = {(m, p) for m, p, op in operations(document) if "creates_limited" in str(op)} - CREATES
    assert others == set()
    for (method, path), code in CAPS.items():
        assert f"`{code}`" in document["paths"][path][method]["responses"]["429"]["description"], path
        assert (method, path) in {(m, p) for m, p, op in operations(document) if code in str(op)}
    assert {(m, p) for m, p, op in operations(document) if any(code in str(op) for code in CAPS.values())} == set(CAPS)


def test_the_speech_routes_document_the_stream_cap_refusal(document: dict[str, Any]) -> None:
    for path in ("/v1/reflections/{reflection_id}/speech", "/api/v1/speech"):
        assert "`streams_limited`" in document["paths"][path]["post"]["responses"]["429"]["description"], path


def test_every_answer_and_body_is_a_closed_shape(document: dict[str, Any], app_handlers: dict[str, Any]) -> None:
    """`additionalProperties: false` on every object schema, so a client generator makes closed models and the
    schemathesis run catches a member a route answers without declaring it. Only the providers' own metadata
    stays open (its members depend on the provider). Request bodies say so truthfully: each refuses others."""
    schemas = document["components"]["schemas"]
    objects = {name: schema for name, schema in schemas.items() if schema.get("type") == "object"}
    assert {name for name, schema in objects.items() if schema.get("additionalProperties") is not False} == set()
    assert schemas["Voice"]["properties"]["provider_metadata"]["additionalProperties"] == {}
    for body_type in app_handlers.values():
        assert body_type.__struct_config__.forbid_unknown_fields, body_type
    for method, path in UPLOADS:
        form = document["paths"][path][method]["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert form["additionalProperties"] is False


def test_the_reflections_voice_is_typed(document: dict[str, Any]) -> None:
    """The mirror clients poll (DESIGN.md §2), as `VoiceMirror` types it, with its statuses as enums. Its members
    are `voicegate.attempt_mirror`'s and its required ones the column default's, held so by
    tests/integration/test_voice_mirror_members.py: a new member needs no list here."""
    schemas = document["components"]["schemas"]
    for owner in ("Reflection", "VoiceState"):
        assert schemas[owner]["properties"]["voice"] == {"$ref": "#/components/schemas/VoiceMirror"}
    mirror = schemas["VoiceMirror"]
    fields = msgspec.structs.fields(VoiceMirror)
    assert set(mirror["properties"]) == {field.encode_name for field in fields}
    assert set(mirror["required"]) == {field.encode_name for field in fields if field.required}
    # What clients have read since the first release stays in every mirror, the one before an attempt too.
    assert set(mirror["required"]) >= {
        "cloneStatus",
        "runtimeStatus",
        "previewRequired",
        "previewStatus",
        "provider",
        "voiceId",
        "providerVoiceId",
        "targetModel",
        "attemptId",
        "lastError",
        "updatedAt",
        "version",
    }
    # The likeness (issue 46) is in every mirror an attempt wrote; the column's default, before the first
    # attempt, has none.
    likeness = {"likeness", "likenessThreshold", "likenessSource", "likenessError"}
    assert likeness <= set(mirror["properties"])
    assert not likeness & set(mirror["required"])
    assert schemas["MirrorCloneStatus"]["enum"] == [
        "none",
        "queued",
        "processing",
        "verifying",
        "ready",
        "failed",
        "canceled",
        "superseded",
    ]
    assert schemas["MirrorRuntimeStatus"]["enum"] == ["none", "pending", "syncing", "synced", "sync_failed"]
    assert schemas["PreviewStatus"]["enum"] == ["not_required", "pending", "generating", "ready", "completed"]


def test_the_finalize_answers_are_typed(document: dict[str, Any]) -> None:
    responses = document["paths"]["/api/clone/finalize"]["post"]["responses"]
    assert responses["202"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/FinalizedClone"}
    assert responses["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Voice"}


def test_the_launch_refusal_declares_its_reasons(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["ProblemDetails"]
    assert problem["properties"]["blockingReasons"]["items"] == {"type": "string"}
    assert "blockingReasons" not in problem["required"]


def test_the_likeness_is_in_every_shape_that_shows_a_voice(document: dict[str, Any]) -> None:
    """Issue 46: the likeness, its threshold, what was judged and why there is none, wherever a voice or an
    attempt is answered."""
    schemas = document["components"]["schemas"]
    assert {"likeness", "likeness_threshold", "likeness_source", "likeness_error"} <= set(
        schemas["Voice"]["properties"]
    )
    for shape in ("VoiceMirror", "Attempt"):
        assert {"likeness", "likenessThreshold", "likenessSource", "likenessError"} <= set(
            schemas[shape]["properties"]
        ), shape
    assert schemas["LikenessSource"]["enum"] == ["probe", "preview", "render"]
    assert schemas["NoLikeness"]["enum"] == ["probe_failed", "no_speech", "no_sample"]
