"""`/api/v1/consents`: spoken consent. Make one (its phrase, with a one-time code), record it, read it; and the phrase
a sample whose voice matched another account's is read with (`/api/v1/voice-samples/{id}/reading`)."""

from __future__ import annotations

from typing import Any, Final

from litestar import Controller, Request, get, post
from litestar.params import JSONBody

from backend.body_limit import BODY_LIMIT
from backend.consents import types
from backend.http.deps import Caller, Consents, PathId, request_origin
from backend.http.documents.openapi import (
    BY_ID,
    OPEN_CONSENTS,
    USER,
    USER_SECURITY,
    RecordingOperation,
    problems,
    with_examples,
)
from backend.http.forms import FRAMING_BYTES, one_file

#: The largest recording of a phrase taken: a minute of 48 kHz 16-bit stereo WAV is 11 MB.
MAX_RECORDING_BYTES: Final = 12 * 1024 * 1024


class ConsentsController(Controller):
    """Spoken consent: a phrase naming the subject and voicegate, ending with a one-time code, recorded by the
    subject and checked offline for its words and for speech; its speaker is the one every sample made under
    it must be."""

    path = "/api/v1/consents"
    tags = ("consent",)
    security = USER_SECURITY

    @post(
        "/",
        status_code=201,
        summary="Start a spoken consent: the phrase to record",
        operation_class=with_examples(ada={"subjectName": "Ada Lovelace", "language": "en"}),
        responses=problems(*USER, 422, words=OPEN_CONSENTS),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        claims: Caller,
        consents: Consents,
        data: JSONBody[types.ConsentRequest],
    ) -> types.ConsentCreated:
        """`{subjectName, language}` → the `phrase` to record before `expiresAt` (VOICEGATE_CONSENT_PHRASE_SECONDS,
        10 minutes by default): it names the subject and voicegate, says what is agreed to, and ends with four
        digits said as words, fresh each time, so a recording made for another consent does not pass. 422 for a
        language the phrase cannot be checked in (English today)."""
        return await consents.create_consent(claims, data, request_origin(request))

    @post(
        "/{consent_id:uuid}/recording",
        status_code=200,
        request_max_body_size=None,
        opt={BODY_LIMIT: MAX_RECORDING_BYTES + FRAMING_BYTES},
        summary="Record the consent's phrase (multipart: file)",
        operation_class=RecordingOperation,
        responses=problems(*BY_ID, 409, 413, 415, 422),
    )
    async def record(
        self,
        request: Request[Any, Any, Any],
        claims: Caller,
        consents: Consents,
        consent_id: PathId,
    ) -> types.RecordingVerdict:
        """The recording is checked offline: the phrase's words and its code said, and enough speech. `verified`
        keeps it, with its speaker's voiceprint, as the consent's evidence (purged with the samples'
        retention); `rejected` says why (`phrase_mismatch`; `too_noisy`, not heard over the room's noise;
        `not_speech`, `too_short`; `synthetic_speech`, it carries the watermark of synthesized speech) and another
        recording may follow until the phrase expires. 422 `consent_expired` once it has, before the recording is
        read; 409 for a checkbox or an already verified consent."""
        data = await one_file(request, limit=MAX_RECORDING_BYTES, what="the recording")
        return await consents.record_recording(claims=claims, consent_id=consent_id, data=data)

    @get("/{consent_id:uuid}", summary="A consent and where its recording got to", responses=problems(*BY_ID))
    async def get_one(self, claims: Caller, consents: Consents, consent_id: PathId) -> types.ConsentView:
        """The caller's consent (404 for anyone else's): its kind, status, phrase and the recording's verdict."""
        return await consents.get_consent(claims, consent_id)


class SampleReadingController(Controller):
    """The reading a sample asks for when its voice matched another account's (docs/ownership.md)."""

    path = "/api/v1/voice-samples"
    tags = ("samples",)
    security = USER_SECURITY

    @post(
        "/{sample_id:uuid}/reading",
        status_code=201,
        summary="A phrase to read, to show a sample's voice is yours",
        responses=problems(*BY_ID, 409, 422, words=OPEN_CONSENTS),
    )
    async def reading(
        self, request: Request[Any, Any, Any], claims: Caller, consents: Consents, sample_id: PathId
    ) -> types.ConsentCreated:
        """For a sample `awaiting_reading`: its voice matched a voice another account holds, and before it is used its
        speaker reads this phrase aloud (`POST /api/v1/consents/{consentId}/recording`, before `expiresAt`). A
        reading in the sample's voice makes the sample `ready`; one in another voice fails it (`ownership_refused`).
        Whose voice it matched is never said. 409 for a sample that waits for no reading; each call gives a new
        phrase (the newest answers), counted as a spoken consent."""
        return await consents.reading_for_sample(claims, sample_id, request_origin(request))
