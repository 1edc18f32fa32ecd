"""`/api/voices` (the caller's voices) and `/api/clone/...` (a signed upload URL for a consented draft
voice, then finalize: 202)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from backend.auth.verify import UserClaims
from backend.fields import Rename
from backend.http.deps import Caller, PathId, Synthesis, Voices, request_origin
from backend.http.documents.openapi import (
    BY_ID,
    DRAFT_VOICES,
    IDEMPOTENT,
    NAMES_A_VOICE,
    USER,
    USER_SECURITY,
    VOICE,
    IdempotentOperation,
    problems,
    with_examples,
)
from backend.http.idempotency import idempotent
from backend.http.pipeline.entry import ACCOUNT_FIRST
from backend.synthesis import types as synthesis_types
from backend.voices import service, types
from backend.voices.service import VoicesService


class VoicesController(Controller):
    """List, read and soft-delete voices."""

    path = "/api/voices"
    tags = ("voices",)
    security = USER_SECURITY

    @get("/", summary="List the caller's voices", responses=problems(*USER))
    async def list_all(self, claims: Caller, voices: Voices) -> types.VoiceList:
        """The caller's voices with their provider metadata."""
        return await voices.list_voices(claims)

    @post(
        "/",
        status_code=202,
        summary="Make a voice from 1 to 25 of the caller's ready samples",
        operation_class=with_examples(
            three_samples={
                "sampleIds": [
                    "6bcc1f0e-2d4b-4c7a-9e15-0f8a3b2c1d40",
                    "0d2f6a41-93c5-4a8e-b1f7-2e6c9d4a5b13",
                    "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9",
                ],
                "name": "My voice",
            }
        ),
        responses=problems(*BY_ID, 409, 422, words=VOICE),
    )
    async def create(self, claims: Caller, voices: Voices, data: JSONBody[types.NewVoiceBody]) -> types.VoiceSamples:
        """`{sampleIds, name?, consentId?}` → 202: the voice and its clone attempt, which enrols every sample (a
        provider that takes one reference gets them joined), and the set's quality report as known before the
        enrolment measures pitch and timbre (`GET /api/voices/{id}/samples` shows it after). 400 a sample
        listed twice or not 1-25 of them; 404 one not the caller's; 409 `sample_not_ready` or `voice_name_taken`; 422
        `samples_mixed_providers`, `mixed_speakers` (the samples are not all one speaker: the detail names the
        sample that differs, or the seconds of a sample whose speech, window by window, is not the voice of the
        others: "Sample … : the speech from 4.2 s to 8.0 s is not the voice of the other samples …"),
        `speaker_mismatch` (a sample is not the speaker of the spoken consent `consentId`, as a whole or in any
        3 s of its speech: the detail names the sample and those seconds), or a provider not configured or not
        speaking the first sample's language. A refusal of the speakers is audited (`voice.speaker_refused`).
        """
        return await voices.create_voice(claims, data)

    @get("/{voice_id:uuid}", summary="Get a voice", responses=problems(*BY_ID))
    async def get_one(self, claims: Caller, voices: Voices, voice_id: PathId) -> types.Voice:
        """One of the caller's voices (404 for anyone else's)."""
        return await voices.get_voice(claims, voice_id)

    @patch(
        "/{voice_id:uuid}",
        summary="Rename a voice",
        responses=problems(*BY_ID, 409, words=NAMES_A_VOICE),
        operation_class=with_examples(a_name={"name": "My voice"}),
    )
    async def rename(self, claims: Caller, voices: Voices, voice_id: PathId, data: JSONBody[Rename]) -> types.Voice:
        """`{name}`: 1-200 characters, not blank, no control characters; the voice as renamed. 409
        `voice_name_taken` when another of the caller's voices has that name."""
        return await voices.rename_voice(claims, voice_id, data)

    @get(
        "/{voice_id:uuid}/samples",
        summary="The samples the voice is made from, with their quality report as a set",
        responses=problems(*BY_ID),
    )
    async def samples(self, claims: Caller, voices: Voices, voice_id: PathId) -> types.VoiceSamples:
        """Its newest set (`attemptStatus` says whether the voice speaks from it yet) and the report: speech
        seconds, loudness and pitch spread, and `warnings` (`other_speaker` for a sample unlike the others
        in pitch or timbre, once the enrolment has measured them: `quality.measured`). 404 for a voice made
        from a single sample the older way."""
        return await voices.voice_samples(claims, voice_id)

    @put(
        "/{voice_id:uuid}/samples",
        status_code=202,
        summary="Enrol the voice again from another set of samples (add or remove some)",
        operation_class=with_examples(
            two_samples={"sampleIds": ["6bcc1f0e-2d4b-4c7a-9e15-0f8a3b2c1d40", "0d2f6a41-93c5-4a8e-b1f7-2e6c9d4a5b13"]}
        ),
        responses=problems(*BY_ID, 409, 422),
    )
    async def replace_samples(
        self, claims: Caller, voices: Voices, voice_id: PathId, data: JSONBody[types.SamplesBody]
    ) -> types.VoiceSamples:
        """`{sampleIds}` → 202: a new clone attempt from these samples; the voice speaks as before until it
        is ready. Refused as `POST /api/voices` refuses a set, and 409 while a clone of the voice is under way."""
        return await voices.replace_samples(claims, voice_id, data)

    @get(
        "/{voice_id:uuid}/clips",
        summary="The voice's clips (synthesis jobs), newest first, a page at a time",
        responses=problems(*BY_ID),
    )
    async def clips(
        self,
        claims: Caller,
        synthesis: Synthesis,
        voice_id: PathId,
        limit: Annotated[int, QueryParameter(ge=1, le=synthesis_types.MAX_PAGE_SIZE)] = synthesis_types.PAGE_SIZE,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> synthesis_types.ClipPage:
        """Each clip's text, status, duration and dates; pass `nextCursor` back as `cursor` for the next page."""
        return await synthesis.voice_clips(claims, voice_id, limit=limit, cursor=cursor)

    @get(
        "/{voice_id:uuid}/preview",
        summary="A short-lived URL to hear the voice: its clone's preview, else its newest clip",
        responses=problems(*BY_ID, 409),
    )
    async def preview(self, claims: Caller, synthesis: Synthesis, voice_id: PathId) -> synthesis_types.VoicePreview:
        """`{audioUrl, expiresIn, source}`; `audioUrl` is null while the voice has neither a preview nor a clip."""
        return await synthesis.voice_preview(claims, voice_id)

    @delete("/{voice_id:uuid}", summary="Delete a voice (soft)", responses=problems(*BY_ID))
    async def remove(self, claims: Caller, voices: Voices, voice_id: PathId) -> None:
        """Soft-delete one of the caller's voices with its manifest and purge the samples kept for it; the
        provider's copy is left for operators."""
        await voices.soft_delete_voice(claims, voice_id)


class CloneController(Controller):
    """Upload-then-finalize cloning."""

    path = "/api/clone"
    tags = ("clone",)
    security = USER_SECURITY

    @post(
        "/upload-url",
        # Storage signs the URL before the draft is written: the account is checked first.
        opt={ACCOUNT_FIRST: True},
        summary="Signed upload URL for a new voice's sample",
        operation_class=with_examples(a_consented_voice={"name": "My voice", "consent": True, "language": "en"}),
        responses=problems(*USER, 400, 404, 409, 422, words=DRAFT_VOICES),
    )
    async def upload_url(
        self,
        request: Request[Any, Any, Any],
        claims: Caller,
        voices: Voices,
        data: JSONBody[types.UploadUrlBody],
    ) -> types.UploadTicket:
        """Record consent and a draft voice; PUT the sample to `upload_url`, then finalize."""
        return await voices.create_upload(claims, data, origin=request_origin(request))

    @post(
        "/finalize",
        status_code=202,
        summary="Check the uploaded sample and queue the clone",
        operation_class=with_examples(
            IdempotentOperation, the_uploaded_voice={"voice_id": "9c1ab5e2-7e0d-4f4a-8d36-5b2c0f3e4a11"}
        ),
        responses={
            200: ResponseSpec(types.Voice, description="With `Prefer: wait=N`: the voice once ready or failed."),
            **problems(*BY_ID, *IDEMPOTENT, 413, 415, words=NAMES_A_VOICE),
        },
    )
    async def finalize(
        self,
        request: Request[Any, Any, Any],
        claims: Caller,
        voices: Voices,
        data: JSONBody[types.FinalizeBody],
        prefer: Annotated[str | None, HeaderParameter(name="prefer")] = None,
    ) -> Response[types.FinalizedClone]:
        """Verify the uploaded object (present, within limits, really audio) and queue the attempt.

        With an `Idempotency-Key`, a repeat of the same body replays the first 202. With
        `Prefer: wait=N` (N ≤ 60) it waits up to N s and answers 200 with the finished (ready or failed)
        voice, else the usual 202.
        """
        accepted = await idempotent(
            request,
            claims,
            lambda record: voices.finalize(claims, data, record=record),
            body=msgspec.json.encode(data),
        )
        return await _wait_if_preferred(voices, claims, accepted, data.voice_id, prefer)


async def _wait_if_preferred(
    voices: VoicesService, claims: UserClaims, accepted: Response[Any], voice_id: uuid.UUID, prefer: str | None
) -> Response[Any]:
    """With `Prefer: wait=N` (N ≤ 60), wait up to N s for a queued finalize's voice and answer 200 with
    it once ready or failed; otherwise (no preference, a replayed or refused answer, or time up) the
    answer as it was."""
    wait = service.preferred_wait(prefer)
    if wait is None or accepted.status_code != HTTP_202_ACCEPTED:
        return accepted
    finished = await voices.wait_for_voice(claims.raw, voice_id, wait)
    if finished is None:
        return accepted
    return Response(finished, status_code=HTTP_200_OK, headers={"Preference-Applied": f"wait={wait}"})
