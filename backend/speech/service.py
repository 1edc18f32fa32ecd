"""Speech streamed as it is made: a reflection's voice once its launch gate passes, or a user's ready voice.

The text is spoken a sentence at a time (`backend.text.sentences`), each sentence one provider stream, so the
first audio leaves after the first sentence is made rather than the whole text. Every provider's audio is marked
with the watermark on its way out, in blocks as it comes (`backend.watermark.stream`), on the CPU executor in the
stream owner's lane; the stream's first chunk leaves as it came, before its mark could be made. The `local` engine
renders on the process's CPU executor in the stream owner's lane, so one user's streams take turns with everyone
else's. The stream waits for its first bytes before answering, so a provider that refuses or cannot be reached is
an error status, not an empty 200. When the client goes away the stream is closed, which closes the provider
request; either way the stream's row in `speech_streams` is finished with the characters sent to the provider and
the seconds of audio made.

Each sentence is charged through the usage ledger (`backend.usage.charge`): its first send is reserved before the
provider is sent it, the first sentence's in the transaction that opens the stream (past the quota, the request is
refused 429 `quota_exceeded`), each next one's in its own transaction while the audio before it flows, and every
resend of it (the adapter's inline retry) before it is made. A sentence or resend the quota refuses is never sent:
the stream ends cleanly after the audio made so far, which is whole (a WAV or MP3 closed as at any end), and its row
says `quota_exceeded` (before any audio, the request is refused instead). What was reserved and never sent is given
back. The seconds each sentence made are written to its ledger row when the stream is recorded; a stream's end the
database could not take then is written by the ledger once it can, and so is the release of an opening whose
COMMIT went unanswered (the stream was refused 503 and never spoke).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec
import psycopg

from backend.audio.formats import MEDIA_TYPES, SpeechFormat, StreamEncoder
from backend.auth.verify import UserClaims
from backend.consents import phrases_said, withdraw_phrases
from backend.cpu import CpuExecutor
from backend.db.connection import Connection
from backend.db.queries import load_queries
from backend.db.units import BECOME_SERVICE, UNFLUSHED_COMMIT, Database, commit_with
from backend.domain.voices import VoiceRow
from backend.errors import (
    DatabaseUnavailable,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
    QuotaExceeded,
    TooManyRequests,
    Unauthorized,
    VoicegateError,
    VoiceNotReady,
)
from backend.policy.launch import launch_voice
from backend.policy.speaker import Mute, Waits, awaiting, own_voice, speaker
from backend.providers.base import STREAM_SAMPLE_RATE, ProviderVoice, VoiceProvider
from backend.providers.config import ProviderSettings
from backend.providers.errors import (
    ProviderError,
    TransientProviderError,
    UnknownOutcomeError,
    UnsupportedLanguageError,
)
from backend.providers.registry import ProviderSet, check_speakable, language_not_supported
from backend.records import attempts, reflection_rows, voice_rows
from backend.records.speech_streams import SpeechStreamOutcome
from backend.speech.types import SpeechRequest, VoiceSpeechRequest
from backend.text import cleaned, sentences
from backend.usage import ledger
from backend.usage.charge import Later, Ledger
from backend.usage.ledger import Allowance, UsageKind
from backend.watermark.stream import StreamMarker

log = logging.getLogger(__name__)
_Q = load_queries(Path(__file__).with_suffix(".sql"))
#: Silence between sentences, each spoken on its own (as between the parts of a synthesis job).
SENTENCE_PAUSE_S = 0.12
#: What keeps a sentence from being sent: the quota, its user gone (erased while it streamed), the user's other
#: spending holding the counter, the database.
_UNCHARGED = (QuotaExceeded, Unauthorized, TooManyRequests, DatabaseUnavailable)


class _Opened(msgspec.Struct, frozen=True, kw_only=True):
    """Who speaks with which voice, checked in the caller's transaction."""

    owner_id: uuid.UUID
    voice_id: uuid.UUID
    voice: ProviderVoice
    reflection_id: uuid.UUID | None = None
    attempt_id: uuid.UUID | None = None


class SpeechStream:
    """One stream: an async iterator of the audio's bytes for the response body, and `finish` for after it.

    `finish` closes what is still open (the provider request of a client that went away) and records the
    stream's usage; it runs whether the stream completed or not. `ended` is called once the usage is
    recorded, however the stream ended (refused before its first byte, cut off midway, or finished).
    """

    def __init__(
        self,
        db: Database,
        stream_id: uuid.UUID,
        *,
        provider: VoiceProvider,
        cpu: CpuExecutor,
        opened: _Opened,
        text: str,
        fmt: SpeechFormat,
        ended: Callable[[], None],
        ledger: Ledger,
        allowance: Allowance,
    ) -> None:
        self.id = stream_id
        self.media_type = MEDIA_TYPES[fmt]
        self.headers = {
            "Cache-Control": "no-store",
            # Reverse proxies (nginx) would otherwise hold the audio back until they have a buffer full.
            "X-Accel-Buffering": "no",
            "Voicegate-Stream-Id": str(stream_id),
            "Voicegate-Voice-Id": str(opened.voice_id),
            "Voicegate-Sample-Rate": str(STREAM_SAMPLE_RATE),
        }
        if opened.attempt_id is not None:
            self.headers["Voicegate-Attempt-Id"] = str(opened.attempt_id)
        self.headers.update(allowance.headers())
        self._sentences = sentences(text)
        if (cut := _quota_cut(self._sentences, allowance.remaining)) is not None:
            self.headers["Voicegate-Quota-Cut"] = cut
        self._db = db
        self._provider = provider
        self._cpu = cpu
        self._owner = opened.owner_id
        self._voice = opened.voice
        self._ledger = ledger
        #: The seconds of audio each sentence sent made, by its index (its ledger row's `call_key`).
        self._seconds: list[float] = []
        self._encoder = StreamEncoder(fmt)
        self._characters = 0
        self._outcome = SpeechStreamOutcome.CANCELED
        self._error_code: str | None = None
        self._recorded = False
        self._ended = ended
        self._chunks = self._generate()
        self._first: bytes | None = None

    async def open(self) -> None:
        """Wait for the first bytes; a provider error before them is raised as the HTTP error it means, and so is
        what kept the first sentence's resend from being sent (the quota: 429)."""
        try:
            self._first = await anext(self._chunks, b"")
        except ProviderError as exc:
            await self._chunks.aclose()
            await self._record()
            raise _refusal(exc) from exc
        except _UNCHARGED:
            await self._chunks.aclose()
            await self._record()
            raise

    def __aiter__(self) -> SpeechStream:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            if first:
                return first
        try:
            return await anext(self._chunks)
        except ProviderError:
            # The status is sent already: the response is cut off, and the client sees an incomplete body.
            log.warning("speech stream %s: the provider failed midway", self.id, exc_info=True)
            await self._record()
            raise

    async def finish(self) -> None:
        """Close the provider request if the client left early, then record the stream's usage."""
        await self._chunks.aclose()
        await self._record()

    async def _generate(self) -> AsyncGenerator[bytes, None]:
        encoder = self._encoder
        try:
            for index, sentence in enumerate(self._sentences):
                # The first sentence was reserved with the stream's row.
                if index and not await self._reserve(index, sentence):
                    break
                if index and (pause := encoder.silence(SENTENCE_PAUSE_S)):
                    yield pause
                self._seconds.append(-encoder.seconds)
                try:
                    async with aclosing(self._spoken(index, sentence)) as spoken:
                        async for out in spoken:
                            yield out
                except _UNCHARGED as exc:
                    # A resend the ledger would not reserve was never sent: the stream ends here, whole; before any
                    # audio, the request is refused with it (`open`).
                    self._ended_unsent(index, exc)
                    if not encoder.seconds:
                        raise
                    break
                self._seconds[-1] += encoder.seconds
            if tail := encoder.finish():
                yield tail
            if self._error_code is None:
                self._outcome = SpeechStreamOutcome.COMPLETED
        except ProviderError as exc:
            self._outcome, self._error_code = (
                SpeechStreamOutcome.FAILED,
                (exc.provider_code or type(exc).__name__)[:100],
            )
            raise

    async def _spoken(self, index: int, sentence: str) -> AsyncGenerator[bytes, None]:
        """Sentence `index` as the provider speaks it, marked and encoded, its text charged as it is sent."""
        encoder = self._encoder
        # The stream's first audio leaves as it comes; what follows it waits for its mark.
        marker = StreamMarker(STREAM_SAMPLE_RATE, lead=not index)
        charge = self._ledger.charge(self._call(index, sentence))
        try:
            async with charge, aclosing(self._provider.stream(self._voice, sentence, meter=charge)) as pcm:
                async for chunk in pcm:
                    marker.feed(chunk)
                    if (lead := marker.lead()) and (out := encoder.feed(lead)):
                        yield out
                    if marker.ready and (out := await self._marked(marker, last=False)):
                        yield out
        finally:
            self._characters += charge.characters
        if out := await self._marked(marker, last=True):
            yield out

    def _call(self, index: int, sentence: str) -> ledger.Call:
        """Sentence `index`, as the usage ledger keys it."""
        return _sentence_call(self._owner, self._voice, self.id, index, sentence)

    async def _reserve(self, index: int, sentence: str) -> bool:
        """Reserve sentence `index`'s first send before it is sent; False, with the stream's end recorded as why,
        when the quota refuses it, its user is gone (erased while it streamed) or it cannot be reserved (the database is
        away, or the user's other spending holds the lock): nothing unreserved is ever sent."""
        try:
            async with self._db.service_transaction() as conn:
                await self._ledger.reserve_and_commit(conn, self._call(index, sentence))
        except _UNCHARGED as exc:
            self._ended_unsent(index, exc)
            return False
        return True

    def _ended_unsent(
        self, index: int, exc: QuotaExceeded | Unauthorized | TooManyRequests | DatabaseUnavailable
    ) -> None:
        log.info("speech stream %s: ends before sentence %d is sent (%s)", self.id, index, exc.code)
        self._outcome, self._error_code = SpeechStreamOutcome.FAILED, exc.code

    async def _marked(self, marker: StreamMarker, *, last: bool) -> bytes:
        """What ``marker`` holds, marked on the CPU executor in the stream owner's lane, as the format's bytes."""
        taken = marker.take(last=last)
        if taken is None:
            return b""
        return self._encoder.feed(await self._cpu.run(self._owner, marker.mark, taken))

    async def _record(self) -> None:
        if self._recorded:
            return
        self._recorded = True
        params = {
            "id": self.id,
            "characters": self._characters,
            "audio_ms": round(self._encoder.seconds * 1000),
            "outcome": self._outcome,
            "error_code": self._error_code,
        }
        seconds = {
            "id": self.id,
            "calls": [str(index) for index in range(len(self._seconds))],
            # A sentence cut off midway still holds minus the seconds before it: what it made is what came since.
            "seconds": [
                max(0.0, spoken if spoken >= 0 else spoken + self._encoder.seconds) for spoken in self._seconds
            ],
        }
        try:
            # One round trip, its COMMIT not waiting for the WAL's flush: a stream's end holds a pooled connection
            # for no longer than it must while others open.
            async with self._db.service_transaction() as conn:
                await commit_with(
                    conn, UNFLUSHED_COMMIT, (_Q["finish_stream"], params), (_Q["record_seconds"], seconds)
                )
        except (DatabaseUnavailable, TooManyRequests, asyncio.CancelledError) as exc:
            # Written by the ledger once the database takes it; until then the row says `streaming`. A request
            # cancelled as it wrote (its client left as the provider failed midway) may not have written it either,
            # and a stream records only once: both statements are harmless written twice.
            self._ledger.later(f"the end of speech stream {self.id}", _recording(params, seconds))
            if isinstance(exc, asyncio.CancelledError):
                raise
        except psycopg.Error:
            log.warning("speech stream %s: its usage could not be recorded", self.id, exc_info=True)
        finally:
            self._ended()


@dataclass(frozen=True)
class SpeechService:
    """Speech streams: their use cases over the database, the providers' adapters that speak, the provider
    settings (which providers are configured) and the CPU executor that marks what they speak."""

    db: Database
    providers: ProviderSet
    provider_settings: ProviderSettings
    cpu: CpuExecutor
    ledger: Ledger

    async def reflection_speech(
        self, claims: UserClaims, reflection_id: uuid.UUID, request: SpeechRequest, *, ended: Callable[[], None]
    ) -> SpeechStream:
        """Stream `text` in the reflection's active voice; LaunchBlocked (409, every reason) unless the gate
        passes, NotFound for anyone else's reflection. `ended` is called once an opened stream has ended."""
        text = cleaned(request.text)
        opening = _Opening(self.ledger, uuid.UUID(claims.sub))
        said = await phrases_said(self.db, self.cpu, opening.owner_id, text)
        async with opening, self.db.user_transaction(claims.raw) as conn:
            launch = launch_voice(await reflection_rows.launch_row(conn, reflection_id))
            opened = _Opened(
                owner_id=opening.owner_id,
                voice_id=launch.voice_id,
                voice=launch.voice,
                reflection_id=reflection_id,
                attempt_id=launch.attempt_id,
            )
            await withdraw_phrases(conn, said)
            allowance = await opening.record(conn, opened, text, request.format, self.provider_settings)
        return await self._start(
            opening.stream_id, opened=opened, text=text, fmt=request.format, ended=ended, allowance=allowance
        )

    async def voice_speech(
        self, claims: UserClaims, request: VoiceSpeechRequest, *, ended: Callable[[], None]
    ) -> SpeechStream:
        """Stream `text` in one of the caller's voices that speaks now; VoiceNotReady (409) for one still being
        cloned or with no cloned voice, NotFound for anyone else's. `ended` is called once an opened stream has
        ended."""
        text = cleaned(request.text)
        opening = _Opening(self.ledger, uuid.UUID(claims.sub))
        said = await phrases_said(self.db, self.cpu, opening.owner_id, text)
        async with opening, self.db.user_transaction(claims.raw) as conn:
            row = await voice_rows.visible_row(conn, request.voice_id)
            if row is None:
                raise NotFound("Voice not found.")
            voice = await _speaking(conn, row)
            opened = _Opened(owner_id=opening.owner_id, voice_id=request.voice_id, voice=voice)
            await withdraw_phrases(conn, said)
            allowance = await opening.record(conn, opened, text, request.format, self.provider_settings)
        return await self._start(
            opening.stream_id, opened=opened, text=text, fmt=request.format, ended=ended, allowance=allowance
        )

    async def _start(
        self,
        stream_id: uuid.UUID,
        *,
        opened: _Opened,
        text: str,
        fmt: SpeechFormat,
        ended: Callable[[], None],
        allowance: Allowance,
    ) -> SpeechStream:
        """Open the stream once its row is committed (no connection is held while it streams)."""
        stream = SpeechStream(
            self.db,
            stream_id,
            provider=self.providers.get(opened.voice.provider, owner=opened.owner_id),
            cpu=self.cpu,
            opened=opened,
            text=text,
            fmt=fmt,
            ended=ended,
            ledger=self.ledger,
            allowance=allowance,
        )
        await stream.open()
        return stream


async def _speaking(conn: Connection, row: VoiceRow) -> ProviderVoice:
    """The `speaker` rule when the answer must be now: a voice that waits for its clone cannot stream."""
    own = own_voice(row)
    state = speaker(own, None if own else awaiting(await attempts.open_for_voice(conn, row.id)))
    if isinstance(state, Waits):
        raise VoiceNotReady("The voice is still being cloned; stream once it is ready.")
    if isinstance(state, Mute):
        raise VoiceNotReady(state.message)
    return msgspec.structs.replace(state, language=row.language, metadata=row.provider_metadata)


def _quota_cut(spoken: list[str], remaining: int) -> str | None:
    """`Voicegate-Quota-Cut`'s value, "fit/all", when what the quota leaves (`remaining`, once the first sentence is
    reserved) cannot take every sentence after the first: the stream will end early (a 200 whose body is shorter),
    as far as anyone can tell as it opens (the user's other spending may cut it sooner still)."""
    fit = 1
    for sentence in spoken[1:]:
        if len(sentence) > remaining:
            return f"{fit}/{len(spoken)}"
        remaining -= len(sentence)
        fit += 1
    return None


def _sentence_call(
    owner_id: uuid.UUID, voice: ProviderVoice, stream_id: uuid.UUID, index: int, sentence: str
) -> ledger.Call:
    """Sentence `index` of stream `stream_id`, as the usage ledger keys it (its index)."""
    return ledger.Call(
        owner_id=owner_id,
        provider=voice.provider,
        model=voice.target_model,
        kind=UsageKind.STREAM,
        work_id=stream_id,
        call_key=str(index),
        characters=len(sentence),
    )


class _Opening:
    """A stream being opened, in the transaction that checks the caller: its row and its first sentence's
    reservation, sent with the COMMIT (`record`). When that COMMIT goes unanswered (the database away), the request
    is refused 503 and the stream never speaks, though the row and the reservation may have committed: the ledger
    gives the reservation back and ends the row, once the database takes it."""

    def __init__(self, charging: Ledger, owner_id: uuid.UUID) -> None:
        self.ledger = charging
        self.owner_id = owner_id
        self.stream_id = uuid.uuid4()
        self._call: ledger.Call | None = None

    async def record(
        self, conn: Connection, opened: _Opened, text: str, fmt: SpeechFormat, settings: ProviderSettings
    ) -> Allowance:
        """The stream's usage row, written as the service in the transaction that checked the caller, once the
        voice's provider is configured and can speak the voice's language and read `text` (422 otherwise), with its
        first sentence reserved (429 `quota_exceeded` past the quota, and no row); and where the caller then stands.
        The switch to the service, the reservation, the row and the COMMIT go in one round trip, the transaction's
        second (its first read the gate): the user's spending counter, locked by the reservation until the COMMIT,
        is held for no round trip while the user's other streams open, and the first byte waits for two round trips.
        The COMMIT does not wait for the WAL's flush (`UNFLUSHED_COMMIT`): a Postgres crash in the next moment may
        lose the row and its reservation, as if the stream had never opened, while its audio was made."""
        settings.usable(opened.voice.provider)
        check_speakable(opened.voice.provider, opened.voice.language, text)
        first = next(iter(sentences(text)), "")
        row = {
            "id": self.stream_id,
            "owner_id": opened.owner_id,
            "voice_id": opened.voice_id,
            "reflection_id": opened.reflection_id,
            "attempt_id": opened.attempt_id,
            "provider": opened.voice.provider,
            "provider_voice_id": opened.voice.voice_id,
            "format": fmt,
            "text_characters": len(text),
        }
        self._call = _sentence_call(opened.owner_id, opened.voice, self.stream_id, 0, first)
        return await self.ledger.reserve_and_commit(
            conn, self._call, (_Q["open_stream"], row), before=(BECOME_SERVICE, UNFLUSHED_COMMIT)
        )

    async def __aenter__(self) -> _Opening:
        return self

    async def __aexit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, DatabaseUnavailable) and self._call is not None:
            self.ledger.later(f"the opening of speech stream {self.stream_id}", self._undo)

    async def _undo(self, conn: Connection) -> None:
        """An opening that may have committed and never spoke: its first sentence's reservation given back, its row
        ended `failed` (each a no-op when nothing committed)."""
        if self._call is not None:
            await ledger.release(conn, self._call, None, self.ledger.quota)
        await conn.execute(_Q["never_opened"], {"id": self.stream_id, "error_code": DatabaseUnavailable.code})


def _recording(params: dict[str, Any], seconds: dict[str, Any]) -> Later:
    """What records a stream's end (`SpeechStream._record`) on a transaction of the ledger's."""

    async def record(conn: Connection) -> None:
        await conn.execute(_Q["finish_stream"], params)
        await conn.execute(_Q["record_seconds"], seconds)

    return record


def _refusal(exc: ProviderError) -> VoicegateError:
    """What a provider's refusal before any audio means to the client."""
    if isinstance(exc, TransientProviderError | UnknownOutcomeError):
        return ProviderUnavailable(exc.safe_message)
    if isinstance(exc, UnsupportedLanguageError):
        return language_not_supported(exc)
    return ProviderRejected(exc.safe_message)
