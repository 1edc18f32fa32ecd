"""`/api/v1/provenance/check`: what a file a user holds says of where it came from (the watermark and the C2PA
manifest)."""

from __future__ import annotations

from typing import Any, ClassVar, Final

from litestar import Controller, Request, post
from litestar.openapi.spec import Example, OpenAPIFormat, OpenAPIMediaType, OpenAPIType, RequestBody, Schema

from backend.body_limit import BODY_LIMIT
from backend.http.deps import Caller, Provenance
from backend.http.documents.openapi import USER, USER_SECURITY, ExampleOperation, problems
from backend.http.forms import FILE_FIELD, MAX_SAMPLE_BYTES, UPLOAD_BYTES, one_file
from backend.provenance.service import ProvenanceCheck

CHECK_FORM: Final = RequestBody(
    required=True,
    description="The file to check, as multipart/form-data (at most 25 MiB, as a sample).",
    content={
        "multipart/form-data": OpenAPIMediaType(
            schema=Schema(
                type=OpenAPIType.OBJECT,
                required=[FILE_FIELD],
                additional_properties=False,
                properties={
                    FILE_FIELD: Schema(
                        type=OpenAPIType.STRING,
                        format=OpenAPIFormat.BINARY,
                        description="Any audio a sample may be: WAV, FLAC, MP3, Ogg (Opus, Vorbis), WebM, MP4/M4A.",
                    )
                },
            )
        )
    },
)


class CheckOperation(ExampleOperation):
    """`POST /api/v1/provenance/check`: a multipart body of one `file`."""

    body_examples: ClassVar = {"a file": Example(summary="a file", value={FILE_FIELD: "(audio you were sent)"})}

    def __post_init__(self) -> None:
        self.request_body = CHECK_FORM
        super().__post_init__()


class ProvenanceController(Controller):
    """Where a file came from, as far as it says: the watermark every file voicegate synthesizes carries, and
    the C2PA manifest it is signed with."""

    path = "/api/v1/provenance"
    tags = ("provenance",)
    security = USER_SECURITY

    @post(
        "/check",
        status_code=200,
        request_max_body_size=None,
        opt={BODY_LIMIT: UPLOAD_BYTES},
        summary="Check a file for the watermark and a C2PA manifest (multipart: file)",
        operation_class=CheckOperation,
        responses=problems(
            *USER,
            413,
            415,
            422,
            words={
                415: "Not a multipart body, or a file that is not audio voicegate decodes (`unsupported_audio`: not "
                "audio, corrupt, a header that ends too soon or says no channels or an impossible rate, a sample "
                "that is NaN or infinite; `detail` says which).",
                422: "Audio longer than a sample may be (300 s), or longer than its size can hold.",
            },
        ),
    )
    async def check(self, request: Request[Any, Any, Any], claims: Caller, provenance: Provenance) -> ProvenanceCheck:
        """Any audio the caller holds (decoded as a sample is, under its limits): `watermark` says whether it
        carries Perth-Net's inaudible mark (`present` from a `score` of `threshold`, 0.7, read at its own pitch; else
        from 0.85 on its loud excerpts, at its pitch or shifted back), which every file, preview and stream voicegate
        synthesizes carries and which survives re-encoding (MP3, Opus, AAC), resampling, the telephone band, gain,
        trimming and a shift of pitch or speed. The mark carries no payload: `present` says "marked
        as synthetic by Perth-Net", which Resemble AI's and chatterbox's speech carry too, not "made by
        voicegate", and its absence proves nothing (noise, or a recording of a loudspeaker, can wash it out).
        `c2pa` is the file's C2PA manifest, which does say who made it (`voicegate`: the voice, provider, model
        and consent), while the file is the one signed: `trusted`, `valid` (another signer), `invalid` (altered
        since), `unsigned`; null for a format that carries none (anything but WAV and MP3)."""
        return await provenance.check(claims, await one_file(request, limit=MAX_SAMPLE_BYTES, what="the file"))
