"""`POST /v1/reflections/{id}/speech` and `POST /api/v1/speech`: audio streamed (chunked) as it is made."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Controller, Request, post
from litestar.background_tasks import BackgroundTask
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody
from litestar.response import Stream

from backend.http.deps import Caller, PathId, Speech, StreamSlots
from backend.http.documents.openapi import (
    BY_ID,
    QUOTA_WORDS,
    USER_SECURITY,
    SpeechOperation,
    audio_label,
    problems,
    with_examples,
)
from backend.http.pipeline.concurrency import UserConcurrency
from backend.speech import service, types

#: Refusals besides the caller's: 409 the gate or a voice not ready, 422 a provider not configured or
#: refusing the request before any audio.
REFUSALS = (409, 422)
_TOO_MANY = (
    "Too many requests at once (`concurrency_limited`), the caller already has VOICEGATE_USER_STREAMS "
    f"speech streams open (`streams_limited`), or {QUOTA_WORDS}; retry after `Retry-After` seconds. A stream that "
    "reaches the quota midway ends cleanly after its last whole sentence."
)


def _speech_route(summary: str, **examples: dict[str, Any]) -> post:
    """`POST /` of a speech route: 200 with the audio streamed (`SpeechOperation`), or a problem."""
    responses: dict[int, ResponseSpec] = problems(*BY_ID, *REFUSALS, words={429: _TOO_MANY})
    operation = with_examples(SpeechOperation, **examples)
    return post("/", status_code=200, summary=summary, operation_class=operation, responses=responses)


async def _streamed(
    request: Request[Any, Any, Any],
    slots: UserConcurrency,
    user: str,
    opening: Callable[[Callable[[], None]], Awaitable[service.SpeechStream]],
) -> Stream:
    """The stream `opening(ended)` opens, holding one of `user`'s stream slots from before it opens until it
    has ended (StreamsLimited, a 429, when they are all taken); labelled as the request's `Accept` prefers."""
    slot = slots.take(user)
    try:
        speech = await opening(slot.release)
    except BaseException:
        slot.release()  # refused before it opened (when it opened, its end has released the slot already)
        raise
    # The background task runs once the body has ended, also when the client went away midway.
    return Stream(
        speech,
        media_type=audio_label(request.accept, speech.media_type),
        headers=speech.headers,
        background=BackgroundTask(speech.finish),
    )


class ReflectionSpeechController(Controller):
    """A reflection's voice, streamed, behind its launch gate."""

    path = "/v1/reflections/{reflection_id:uuid}/speech"
    tags = ("speech",)
    security = USER_SECURITY

    @_speech_route(
        "Stream speech in the reflection's voice (once it is ready, synced and previewed)",
        a_sentence_as_wav={"text": "Hello! Nice to hear you.", "format": "wav"},
    )
    async def speak(
        self,
        request: Request[Any, Any, Any],
        claims: Caller,
        speech: Speech,
        stream_slots: StreamSlots,
        reflection_id: PathId,
        data: JSONBody[types.SpeechRequest],
    ) -> Stream:
        """`{text, format}` → the audio as it is made, sentence by sentence; 409 `launch_blocked` with
        `blockingReasons` while the launch gate is closed."""
        return await _streamed(
            request,
            stream_slots,
            claims.sub,
            lambda ended: speech.reflection_speech(claims, reflection_id, data, ended=ended),
        )


class VoiceSpeechController(Controller):
    """One of the caller's ready voices, streamed."""

    path = "/api/v1/speech"
    tags = ("speech",)
    security = USER_SECURITY

    @_speech_route(
        "Stream speech in one of your ready voices",
        a_sentence_as_wav={
            "voiceId": "9c1ab5e2-7e0d-4f4a-8d36-5b2c0f3e4a11",
            "text": "Hello! Nice to hear you.",
            "format": "wav",
        },
    )
    async def speak(
        self,
        request: Request[Any, Any, Any],
        claims: Caller,
        speech: Speech,
        stream_slots: StreamSlots,
        data: JSONBody[types.VoiceSpeechRequest],
    ) -> Stream:
        """`{voiceId, text, format}` → the audio as it is made; 409 `voice_not_ready` for a voice still being
        cloned (or with no cloned voice)."""
        return await _streamed(
            request,
            stream_slots,
            claims.sub,
            lambda ended: speech.voice_speech(claims, data, ended=ended),
        )
