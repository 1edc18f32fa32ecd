"""What the OpenAPI document says beyond each handler's types: the bearer token the user routes take,
every error status a route can answer (an RFC 9457 problem+json body), the `Idempotency-Key` header,
the multipart body of the two sample upload routes (they stream it themselves, so Litestar cannot
see it), and the audio the speech routes stream. A client generator and Swagger's "Try it out" work from this alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

# Litestar's own schema plugin for msgspec Structs, from a private module: Litestar has no public way to close a
# Struct's schema. An upgrade that moves or changes it fails the import, or the closed-shape test in
# tests/unit/api/test_openapi_document.py.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.datastructures import Accept
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.typing import FieldDefinition

from backend.audio.formats import MEDIA_TYPES
from backend.http.pipeline.problem import PROBLEM_JSON, ProblemDetails
from backend.json_body import MAX_DEPTH
from backend.providers.config import Provider

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

BEARER: Final = "bearer"
#: The `security` of every route that acts for a signed-in user.
USER_SECURITY: Final[list[SecurityRequirement]] = [{BEARER: []}]
COMPONENTS: Final = Components(
    security_schemes={
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="JWT",
            description="A Supabase Auth access token (embedded mode: `voicegate token` prints one for the demo"
            " page's user, `you@voicegate.local`).",
        )
    }
)


class ClosedStructs(StructSchemaPlugin):
    """A msgspec Struct's schema says `additionalProperties: false`: an answer encodes exactly its Struct's
    fields, and every request body Struct refuses others (`forbid_unknown_fields`, checked by
    `tests/unit/api/test_openapi_document.py`). So a client generator makes closed models, and a response
    validator (the schemathesis run) catches a member a route answers but the document does not declare."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        """The Struct's schema as Litestar makes it, closed."""
        schema = super().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        # An optional member (`X | UnsetType`, absent unless set) comes out as a oneOf of X alone: say X.
        for name, member in (schema.properties or {}).items():
            if isinstance(member, Schema) and member.one_of and len(member.one_of) == 1:
                (only,) = member.one_of
                if isinstance(only, Schema):
                    only.description = only.description or member.description
                cast("dict[str, Schema | Reference]", schema.properties)[name] = only
        return schema


_WORDS: Final = {
    400: f"The request is malformed (a JSON body that is not UTF-8, nests more than {MAX_DEPTH} deep or is not JSON: "
    "`invalid_json`), a field or parameter is invalid (`detail` names it), or the Host header is not a host "
    "with an optional port (`invalid_host`, on every route).",
    401: "A valid Supabase access token is required.",
    404: "No such resource, or it is not the caller's.",
    408: "The body arrived too slowly (`body_too_slow`: slower than VOICEGATE_BODY_MIN_RATE bytes a second after "
    "VOICEGATE_BODY_TIMEOUT seconds); the connection is closed.",
    409: "The resource is not in a state that allows this (`code` says why, e.g. `stored_object_altered`: a file "
    "voicegate stored has changed since, so it is not served), or the same Idempotency-Key is still in flight.",
    413: "The body is larger than allowed: a JSON body over VOICEGATE_JSON_BODY_BYTES (1 MiB by default, "
    "`body_too_large`), an upload over its route's limit.",
    415: "The body is not a media type the route takes: a JSON route's body not labelled `application/json` "
    "(`json_required`), a sample that is not WAV, MP3, FLAC, OGG/Opus, WebM/Opus or M4A/AAC "
    "(`unsupported_audio_format`), or audio that does not decode (`unsupported_audio`, where the route decodes it: "
    "corrupt, a header that ends too soon or says no channels or an impossible rate, a sample that is NaN or "
    "infinite; `detail` says which).",
    422: "Understood but refused: see `code` (e.g. a provider that is not configured, a refused sample, or "
    "`language_not_supported`: a language or text the voice provider cannot speak, with the `languages` it speaks).",
    429: "Too many requests at once; retry after `Retry-After` seconds.",
    503: "A dependency (database, Storage, provider) is unavailable; retry after `Retry-After` seconds.",
}


def problems(*statuses: int, words: Mapping[int, str] | None = None) -> dict[int, ResponseSpec]:
    """The error answers a route documents: each status with its problem+json body, described in the
    general `_WORDS` unless `words` says what it means on this route."""
    own = words or {}
    return {
        status: ResponseSpec(
            data_container=ProblemDetails,
            media_type=PROBLEM_JSON,
            description=own.get(status, _WORDS[status]),
            generate_examples=False,
        )
        for status in statuses
    }


def _problem_responses(*statuses: int) -> dict[str, OpenAPIResponse | Reference]:
    return {
        str(status): OpenAPIResponse(
            description=_WORDS[status],
            content={
                PROBLEM_JSON: OpenAPIMediaType(schema=Reference(ref=f"#/components/schemas/{ProblemDetails.__name__}"))
            },
        )
        for status in statuses
    }


#: What every route that reads a JSON body may answer besides its own statuses: a body over the limit, one not
#: labelled JSON, one too slow.
_JSON_BODY_PROBLEMS: Final = _problem_responses(408, 413, 415)
#: What every route that reads a body of another kind (a form) may answer besides its own: a body too slow.
_BODY_PROBLEMS: Final = _problem_responses(408)

#: The 409 of a route that names a voice (creates one, renames one): besides what a 409 means anywhere, the name
#: given is one another of the caller's voices has. A name voicegate chooses (none given) is never refused.
NAMES_A_VOICE: Final = {
    409: f"{_WORDS[409]} `voice_name_taken`: the name given is another of the caller's live voices' (compared "
    "without case or outer spaces); a voice named by voicegate (no name given) takes the first free `name (2)`, "
    "`name (3)`… instead."
}

#: The 503 of an upload route: besides a dependency out of reach, the queue that would check the upload holds more
#: work than this server takes on.
BACKLOG: Final = {
    503: f"{_WORDS[503]} `backlog_full`: the queue that would check this upload holds more than "
    "VOICEGATE_UPLOAD_BACKLOG_SECONDS of work; nothing was read or stored."
}

_TOO_MANY_CREATES = (
    "Too many requests at once (`concurrency_limited`), or the caller has created VOICEGATE_USER_CREATES of this kind"
    " lately (`creates_limited`: one comes back every VOICEGATE_USER_CREATE_WINDOW / VOICEGATE_USER_CREATES seconds)"
)
#: The 429 of a route that creates something each user may create only so many of (`backend.records.user_creates`):
#: the consents, reflections, voices (`VOICE` too) and webhook endpoints routes.
CREATES: Final = {429: f"{_TOO_MANY_CREATES}; retry after `Retry-After` seconds."}
#: The 429 of a route that may make a new voice: CREATES's, and a voice's 409 (`NAMES_A_VOICE`).
VOICE: Final = {**NAMES_A_VOICE, **CREATES}
#: A refusal of a route that sends text to a provider (`backend.usage.ledger`).
QUOTA_WORDS: Final = (
    "`quota_exceeded`: the text would pass the caller's VOICEGATE_USER_CHARACTERS for this VOICEGATE_USER_USAGE_WINDOW "
    "(`Retry-After` is when the window resets; `RateLimit-Policy` and `RateLimit` say the quota and what is left)"
)
#: `POST /api/v1/clone`'s 429: a voice's (VOICE), the quota, or too many of the caller's jobs not yet ended.
SPENDS_JOBS: Final = {
    429: f"{_TOO_MANY_CREATES}, {QUOTA_WORDS}, or the caller has VOICEGATE_USER_QUEUED_JOBS jobs queued or running "
    "(`jobs_limited`); retry after `Retry-After` seconds."
}
#: `POST /api/v1/consents`'s 429: CREATES's, or too many of the caller's consents await their recording.
OPEN_CONSENTS: Final = {
    429: f"{_TOO_MANY_CREATES}, or VOICEGATE_USER_OPEN_CONSENTS of the caller's spoken consents await their recording "
    "(`open_consents_limited`: `Retry-After` is when the oldest lapses); retry after `Retry-After` seconds."
}
#: `POST /api/clone/upload-url`'s 429: CREATES's, or the caller has too many draft voices.
DRAFT_VOICES: Final = {
    **NAMES_A_VOICE,
    429: f"{_TOO_MANY_CREATES}, or the caller has VOICEGATE_USER_DRAFT_VOICES draft voices (`draft_voices_limited`: "
    "finalize or delete one; a draft never lapses); retry after `Retry-After` seconds.",
}

#: What every route for a signed-in user may answer: a bad Host header (as every route may), a refused token,
#: too many requests at once (the user's VOICEGATE_USER_CONCURRENCY, or every connection busy), or the
#: database away.
USER: Final = (400, 401, 429, 503)
#: A route with path parameters (their validation is a 400 too).
BY_ID: Final = (*USER, 404)
#: What a route with an `Idempotency-Key` may answer besides its own statuses.
IDEMPOTENT: Final = (400, 409, 422)

_IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key",
    param_in="header",
    required=False,
    description="1-255 printable ASCII characters. The same key with the same request replays the first "
    "answer (with `Idempotent-Replayed: true`) instead of doing it again; kept 24 h per user and route.",
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=255),
)


@dataclass
class ExampleOperation(Operation):
    """An operation whose request body shows `body_examples`: what Swagger's "Try it out" fills in (without
    them it makes one up from the schema, every optional field set to "string", which the route refuses).
    Set per route with `with_examples`; `tests/unit/api/test_openapi_document.py` checks every request body
    has them and that each is valid against its schema."""

    body_examples: ClassVar[Mapping[str, Example]] = {}

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody) and self.body_examples:
            for media in self.request_body.content.values():
                media.examples = dict(self.body_examples)
        if isinstance(self.request_body, RequestBody):
            # What the entry check answers a JSON body before the route sees it (`backend.http.pipeline.entry`), and the
            # exchange any body that arrives too slowly (`backend.http.pipeline.exchange`).
            json_body = "application/json" in self.request_body.content
            self.responses = {**(_JSON_BODY_PROBLEMS if json_body else _BODY_PROBLEMS), **(self.responses or {})}


def with_examples(base: type[ExampleOperation] = ExampleOperation, **bodies: dict[str, Any]) -> type[Operation]:
    """`base` whose request body shows `bodies`, each named by its keyword (in words: the name Swagger offers
    it by)."""
    examples = {
        name.replace("_", " "): Example(summary=name.replace("_", " "), value=body) for name, body in bodies.items()
    }
    return cast("type[Operation]", type(f"{base.__name__}WithExamples", (base,), {"body_examples": examples}))


@dataclass
class IdempotentOperation(ExampleOperation):
    """An operation that takes an `Idempotency-Key` (read by `backend.http.idempotency`, not a parameter)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.parameters = [*(self.parameters or []), _IDEMPOTENCY_KEY]


RECORDING_FORM: Final = RequestBody(
    required=True,
    description="The recording of the consent's phrase, as multipart/form-data (at most 12 MiB).",
    content={
        "multipart/form-data": OpenAPIMediaType(
            schema=Schema(
                type=OpenAPIType.OBJECT,
                required=["file"],
                additional_properties=False,
                properties={
                    "file": Schema(
                        type=OpenAPIType.STRING,
                        format=OpenAPIFormat.BINARY,
                        description="The subject saying the phrase, code included.",
                    )
                },
            )
        )
    },
)


@dataclass
class RecordingOperation(ExampleOperation):
    """`POST /api/v1/consents/{id}/recording`: a multipart body of one `file`."""

    body_examples: ClassVar[Mapping[str, Example]] = {
        "a recording": Example(summary="a recording", value={"file": "(the subject saying the phrase)"})
    }

    def __post_init__(self) -> None:
        self.request_body = RECORDING_FORM
        super().__post_init__()


SAMPLE_FORM: Final = RequestBody(
    required=True,
    description="The sample and its consent, as multipart/form-data (streamed; at most 25 MiB).",
    content={
        "multipart/form-data": OpenAPIMediaType(
            schema=Schema(
                type=OpenAPIType.OBJECT,
                required=["file"],
                # The reader refuses a field it does not know (`backend.http.routes.samples`).
                additional_properties=False,
                properties={
                    "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description="The recording."),
                    "consent": Schema(
                        type=OpenAPIType.BOOLEAN,
                        description="True: the speaker consents (the checkbox). Required unless `consentId` is sent.",
                        examples=[True],
                    ),
                    "consentId": Schema(
                        type=OpenAPIType.STRING,
                        format=OpenAPIFormat.UUID,
                        description="A verified spoken consent (`POST /api/v1/consents`) to store the sample under "
                        "instead of the checkbox; the sample's speaker must be the consent's, as a whole and in "
                        "every 3 s of its speech (else it fails with `speaker_mismatch`, its `failureReason` naming "
                        "the seconds that are not). Under the checkbox a sample must hold one voice (else "
                        "`mixed_speakers`, naming the seconds of the other). Required when the server takes spoken "
                        "consent only.",
                        examples=[""],
                    ),
                    "name": Schema(
                        type=OpenAPIType.STRING, max_length=200, description="The voice's name.", examples=["My voice"]
                    ),
                    "language": Schema(
                        type=OpenAPIType.STRING,
                        max_length=35,
                        description="BCP 47 tag such as `en` or `de-CH`.",
                        examples=["en"],
                    ),
                    # Swagger UI fills each text box with its example, or else with "string": an empty one is
                    # not sent, as an optional field that only the recording's own words (or its owner) can fill.
                    "transcript": Schema(
                        type=OpenAPIType.STRING,
                        max_length=5000,
                        description="What is said in the recording.",
                        examples=[""],
                    ),
                    # The one Provider schema the JSON bodies' `provider` refers to too (from `Provider`).
                    "provider": Reference(
                        ref=f"#/components/schemas/{Provider.__name__}",
                        description="The voice provider (default: the server's).",
                    ),
                    "subject_name": Schema(
                        type=OpenAPIType.STRING,
                        max_length=200,
                        description="Whose voice it is, for the consent (default: the voice's name).",
                        examples=[""],
                    ),
                    "keep_sample": Schema(
                        type=OpenAPIType.BOOLEAN,
                        default=False,
                        description="The optional consent to keep the sample while the voice exists, so the voice "
                        "can be enrolled again with another provider (`consent.keepSampleText` of `/config.json`).",
                    ),
                },
            ),
            examples={
                "a consented recording": Example(
                    summary="a consented recording",
                    value={"file": "(the recording)", "consent": True, "name": "My voice", "language": "en"},
                )
            },
        )
    },
)


@dataclass
class SampleUploadOperation(IdempotentOperation):
    """The streamed multipart sample upload."""

    def __post_init__(self) -> None:
        self.request_body = SAMPLE_FORM
        super().__post_init__()


_BINARY: Final = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
#: What an audio route answers, its bytes unchanged, to a request whose `Accept` prefers it to the audio's own
#: type. Declared beside the audio types: a client generator that knows no audio type (openapi-python-client
#: reads only JSON, text and this as a body) then makes bytes of the answer with no configuration of its own.
OCTET_STREAM: Final = "application/octet-stream"


def audio_label(accept: Accept, media_type: str) -> str:
    """The type to label audio of `media_type` with: OCTET_STREAM when `accept` prefers it, else its own."""
    own = media_type.split(";", 1)[0]
    return OCTET_STREAM if accept.best_match([own, OCTET_STREAM]) == OCTET_STREAM else media_type


def audio_content(media_types: tuple[str, ...]) -> dict[str, OpenAPIMediaType]:
    """An audio answer's `content`: each of its audio types, then OCTET_STREAM, each a binary string."""
    return {media_type: OpenAPIMediaType(schema=_BINARY) for media_type in (*media_types, OCTET_STREAM)}


_STREAM_HEADERS: Final = {
    "Voicegate-Stream-Id": "The stream's usage record (`speech_streams`).",
    "Voicegate-Voice-Id": "The voice that speaks.",
    "Voicegate-Attempt-Id": "The reflection's active clone attempt (reflection route only): a runtime that sees it "
    "change knows the reflection's voice changed.",
    "Voicegate-Sample-Rate": "24000: the PCM every format is made from.",
}
SPEECH_AUDIO: Final = OpenAPIResponse(
    description="The audio, chunked as it is made, in the requested `format`: `pcm_24000` is raw 16-bit "
    "little-endian mono PCM at 24 kHz; `wav` is that PCM behind a header whose sizes are 0xFFFFFFFF (the length is "
    "not known when it starts); `mp3` is MPEG-2 Layer III at 64 kbit/s. A stream cut off midway (the provider "
    "failed after the audio began) ends without its final chunk. With `Accept: application/octet-stream` the same "
    "bytes come labelled so.",
    content=audio_content(tuple(media_type.split(";", 1)[0] for media_type in MEDIA_TYPES.values())),
    headers={
        name: OpenAPIHeader(description=words, schema=Schema(type=OpenAPIType.STRING))
        for name, words in _STREAM_HEADERS.items()
    },
)


@dataclass
class SpeechOperation(ExampleOperation):
    """A speech route: its 200 is audio streamed in one of the formats, not JSON."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.responses = {**(self.responses or {}), "200": SPEECH_AUDIO}


CLIP_AUDIO: Final = OpenAPIResponse(
    description="The clip as an attachment: `audio/wav` (the stored render, its C2PA manifest embedded) or "
    "`audio/mpeg` (MPEG-2 Layer III, 24 kHz mono, 64 kbit/s, made from the WAV; it carries no manifest). With "
    "`Accept: application/octet-stream` the same bytes come labelled so.",
    content=audio_content(("audio/wav", "audio/mpeg")),
    headers={
        "Content-Disposition": OpenAPIHeader(
            description='`attachment; filename="clip-{jobId}.{format}"`', schema=Schema(type=OpenAPIType.STRING)
        )
    },
)


@dataclass
class ClipAudioOperation(Operation):
    """`GET /api/v1/clone/{id}/audio`: its 200 is the audio file, not JSON."""

    def __post_init__(self) -> None:
        self.responses = {**(self.responses or {}), "200": CLIP_AUDIO}
