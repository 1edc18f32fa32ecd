"""`POST /v1/reflections/{id}/speech` and `POST /api/v1/speech`: audio streamed (chunked) as it is made."""

from __future__ import annotations

from litestar import Controller, post
from litestar.background_tasks import BackgroundTask
from litestar.params import JSONBody
from litestar.response import Stream

from backend.api.deps import Caller, Config, DbPool, LifecycleContext, PathId
from backend.api.docs import BY_ID, USER_SECURITY, SpeechOperation, problems
from backend.speech import service

#: Refusals besides the caller's: 409 the gate or a voice not ready, 422 a provider not configured or
#: refusing the request before any audio.
REFUSALS = (409, 422)


def _speech_route(summary: str) -> post:
    """`POST /` of a speech route: 200 with the audio streamed (`SpeechOperation`), or a problem."""
    return post(
        "/", status_code=200, summary=summary, operation_class=SpeechOperation, responses=problems(*BY_ID, *REFUSALS)
    )


def _streamed(speech: service.SpeechStream) -> Stream:
    # The background task runs once the body has ended, also when the client went away midway.
    return Stream(
        speech, media_type=speech.media_type, headers=speech.headers, background=BackgroundTask(speech.finish)
    )


class ReflectionSpeechController(Controller):
    """A reflection's voice, streamed, behind its launch gate."""

    path = "/v1/reflections/{reflection_id:uuid}/speech"
    tags = ("speech",)
    security = USER_SECURITY

    @_speech_route("Stream speech in the reflection's voice (once it is ready, synced and previewed)")
    async def speak(
        self,
        claims: Caller,
        pool: DbPool,
        settings: Config,
        lifecycle: LifecycleContext,
        reflection_id: PathId,
        data: JSONBody[service.SpeechRequest],
    ) -> Stream:
        """`{text, format}` → the audio as it is made, sentence by sentence; 409 `launch_blocked` with
        `blockingReasons` while the launch gate is closed."""
        return _streamed(
            await service.reflection_speech(
                pool, claims, reflection_id, data, providers=lifecycle.providers, settings=settings.provider_settings
            )
        )


class VoiceSpeechController(Controller):
    """One of the caller's ready voices, streamed."""

    path = "/api/v1/speech"
    tags = ("speech",)
    security = USER_SECURITY

    @_speech_route("Stream speech in one of your ready voices")
    async def speak(
        self,
        claims: Caller,
        pool: DbPool,
        settings: Config,
        lifecycle: LifecycleContext,
        data: JSONBody[service.VoiceSpeechRequest],
    ) -> Stream:
        """`{voiceId, text, format}` → the audio as it is made; 409 `voice_not_ready` for a voice still being
        cloned (or with no cloned voice)."""
        return _streamed(
            await service.voice_speech(
                pool, claims, data, providers=lifecycle.providers, settings=settings.provider_settings
            )
        )
