"""`VoicegateTTSService`: a Pipecat TTS service that speaks in a voicegate reflection's voice.

It streams each sentence Pipecat hands it from `POST /v1/reflections/{id}/speech` as 24 kHz PCM and yields
the audio as `TTSAudioRawFrame`s while it arrives. It starts only for a reflection whose launch gate passes
(ready, synced, previewed), from a reflection id or a session id, with the user's access token. When the
reflection's active attempt changes (the speech route names it on every answer) it reads the voice again
and fires `on_voice_changed`; while the gate is closed again it reports each refusal with its reasons.
An interruption cancels the request, and voicegate then cancels the provider's.

Install with `pip install 'voicegate[pipecat]'`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx
from pipecat.frames.frames import CancelFrame, EndFrame, ErrorFrame, Frame, StartFrame, TTSAudioRawFrame
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService

from backend.providers.base import STREAM_SAMPLE_RATE
from backend.tls import verifying_context

SPEECH_FORMAT = "pcm_24000"


class VoicegateTTSService(TTSService):
    """Speak in a voicegate reflection's voice, streamed as it is made.

    Event handlers:
        on_voice_changed: Called with the reflection's voice mirror when its active attempt changed.
    """

    def __init__(
        self,
        *,
        api_url: str,
        access_token: str,
        reflection_id: str | None = None,
        session_id: str | None = None,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        **kwargs: Any,
    ) -> None:
        """`api_url` is voicegate's base URL and `access_token` the user's Supabase access token; name the
        reflection or a launched session of it. `transport` replaces the HTTP transport (tests)."""
        if (reflection_id is None) == (session_id is None):
            raise ValueError("VoicegateTTSService needs exactly one of reflection_id and session_id")
        super().__init__(
            sample_rate=STREAM_SAMPLE_RATE,
            push_start_frame=True,
            push_stop_frames=True,
            settings=TTSSettings(model=None, voice=None, language=None),
            **kwargs,
        )
        self._api_url = api_url.rstrip("/")
        self._token = access_token
        self._reflection_id = reflection_id
        self._session_id = session_id
        self._timeout = httpx.Timeout(timeout_s)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._attempt_id: str | None = None
        self._blocking: list[str] = []
        self._register_event_handler("on_voice_changed")

    @property
    def reflection_id(self) -> str | None:
        """The reflection whose voice speaks (known once started, when given a session)."""
        return self._reflection_id

    @property
    def attempt_id(self) -> str | None:
        """The reflection's active clone attempt, as last read."""
        return self._attempt_id

    def can_generate_metrics(self) -> bool:
        """Time to first byte and usage are measured."""
        return True

    async def start(self, frame: StartFrame) -> None:
        """Find the reflection (from the session if need be) and refuse to work unless it is launch-ready."""
        await super().start(frame)
        self._client = httpx.AsyncClient(
            base_url=self._api_url,
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=self._timeout,
            verify=verifying_context(trust_env=True),
            transport=self._transport,
        )
        try:
            if self._session_id is not None:
                session = await self._get(f"/v1/sessions/{self._session_id}")
                self._reflection_id = str(session["reflectionId"])
            await self._read_voice()
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            await self.push_error(
                f"voicegate: cannot read the reflection's voice: {exc}", force_treat_as_permanent=True
            )
            return
        if self._blocking:
            await self.push_error(
                f"voicegate: reflection {self._reflection_id} is not ready to launch: {', '.join(self._blocking)}",
                force_treat_as_permanent=True,
            )

    async def stop(self, frame: EndFrame) -> None:
        """Stop and close the HTTP client."""
        await super().stop(frame)
        await self._close()

    async def cancel(self, frame: CancelFrame) -> None:
        """Cancel and close the HTTP client."""
        await super().cancel(frame)
        await self._close()

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        """Stream `text` from the speech route and yield its PCM as audio frames while it arrives."""
        if self._client is None or self._reflection_id is None:
            yield ErrorFrame(error="voicegate: the service has not started")
            return
        path = f"/v1/reflections/{self._reflection_id}/speech"
        try:
            async with self._client.stream("POST", path, json={"text": text, "format": SPEECH_FORMAT}) as response:
                if response.status_code != 200:
                    yield await self._refused(response)
                    return
                if response.headers.get("voicegate-attempt-id") != self._attempt_id:
                    await self._read_voice()
                await self.start_tts_usage_metrics(text)
                carry = b""
                # Each chunk as it arrives: Pipecat's `chunk_size` (0.5 s) would hold the first frame back until
                # that much audio had come, adding it to the first byte Pipecat reports.
                async for chunk in response.aiter_bytes():
                    data = carry + chunk
                    whole = len(data) - len(data) % 2
                    data, carry = data[:whole], data[whole:]
                    if data:
                        await self.stop_ttfb_metrics()
                        yield TTSAudioRawFrame(data, self.sample_rate, 1, context_id=context_id)
        except httpx.HTTPError as exc:
            yield ErrorFrame(error=f"voicegate: the speech stream failed: {exc!r}")

    async def _refused(self, response: httpx.Response) -> ErrorFrame:
        """An ErrorFrame saying why voicegate refused; a closed gate means the voice changed, so read it."""
        await response.aread()
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        if problem.get("code") == "launch_blocked":
            await self._read_voice()
        detail = problem.get("detail") or response.text[:200]
        return ErrorFrame(error=f"voicegate refused to speak ({response.status_code} {problem.get('code')}): {detail}")

    async def _read_voice(self) -> None:
        """Read the reflection's voice state: launch readiness, and the provider voice it speaks with."""
        state = await self._get(f"/v1/reflections/{self._reflection_id}/voice")
        voice: dict[str, Any] = state["voice"]
        self._blocking = [] if state["launchReady"] else list(state["blockingReasons"])
        self._settings.voice = voice.get("providerVoiceId")
        self._settings.model = voice.get("targetModel") or voice.get("provider")
        previous, self._attempt_id = self._attempt_id, voice.get("attemptId")
        if previous is not None and previous != self._attempt_id:
            await self._call_event_handler("on_voice_changed", voice)

    async def _get(self, path: str) -> dict[str, Any]:
        assert self._client is not None  # noqa: S101 - set by start()
        response = await self._client.get(path)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def _close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
