"""The ``local`` provider: no key, no network; profiles kept in an injectable store."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from typing import Final, Protocol, TypeVar

import msgspec
import numpy as np

from backend.cpu import CpuExecutor, Owner, long_calls, yielding
from backend.providers.base import (
    STREAM_SAMPLE_RATE,
    ProviderVoice,
    SampleRef,
    SendMeter,
    SynthesisResult,
    primary_language,
)
from backend.providers.enrolment import key_digest
from backend.providers.errors import PermanentProviderError, VoiceNotFoundError
from backend.providers.local.engine import prepare, prepared, render
from backend.providers.local.language import refusal
from backend.providers.local.profile import Signal, VoiceProfile, measure
from backend.providers.local.rules import SAMPLE_RULES
from backend.text import pieces
from backend.wav import float_to_wav, wav_to_float

PROVIDER: Final = "local"
ENGINE: Final = "hibari-tts 0.2 voice heart, adapted in its own parameters (offline stand-in, not a neural clone)"
#: What the engine is called where a model name is expected (the C2PA manifest of what it speaks).
MODEL: Final = "hibari-0.2-heart+adapted"

#: Text is rendered a phrase at a time, each phrase one call queued on the CPU executor, so another user's
#: render can run between two of a long text's: how long a phrase takes is how long another user's call may
#: wait for a thread. A cut restarts the intonation, so most fall after a comma and a sentence this long stays
#: whole: about 6 s of speech, a few tens of milliseconds of one core (`bench/local_tts.py`).
PHRASE_CHARS: Final = 100
#: A phrase shorter than this joins its neighbour: a word said alone ("Bob.") loses the sentence's
#: intonation, and a cut should never leave one.
MIN_PHRASE_CHARS: Final = 25
#: A stream's first phrase (of each text it is asked to stream) is cut short, so that many streams opened at once
#: each have their first audio rendered before anyone's second phrase (they go ahead in the executor's lane): at its
#: first comma when there is one within this many characters, else at the last space before it. A render costs a
#: few milliseconds a character, on top of a fixed part (`bench/local_tts.py`); the cut restarts the intonation
#: once, where a comma would pause it anyway when it can.
FIRST_PHRASE_CHARS: Final = 24
#: The fewest characters a cut-short first phrase keeps: two words at least, never a word said alone.
MIN_FIRST_PHRASE_CHARS: Final = 8
#: The silence kept where a cut-short first phrase meets the next, about a comma's pause.
CUT_PAUSE_S: Final = 0.15
#: The silence a stream keeps before its first sound. The engine speaks every sentence after 0.27-0.33 s of
#: silence, which a stream's listener (a voice agent's user) would hear as that much more wait for the first
#: word; this keeps the soft start of a first consonant quieter than `_SOUND`.
STREAM_LEAD_S: Final = 0.06
#: A 16-bit sample louder than this (1 % of full scale) is sound rather than the silence around a phrase.
_SOUND: Final = 328

R = TypeVar("R")


class LocalVoice(msgspec.Struct, frozen=True, kw_only=True):
    """A stored local voice: its identity and measured profile."""

    voice_id: str
    name: str
    language: str
    enrolment_key: str
    profile: VoiceProfile


class ProfileStore(Protocol):
    """Where local voices live between enrolment and synthesis (memory here, the database later)."""

    async def get(self, voice_id: str) -> LocalVoice | None:
        """The stored voice, or ``None``."""
        ...

    async def put(self, voice: LocalVoice) -> None:
        """Store or replace a voice."""
        ...

    async def delete(self, voice_id: str) -> bool:
        """Remove a voice; ``False`` when it was not there."""
        ...

    async def all(self) -> Sequence[LocalVoice]:
        """Every stored voice."""
        ...


class InMemoryProfileStore:
    """The default store: a dict, lost when the process ends."""

    def __init__(self) -> None:
        self._voices: dict[str, LocalVoice] = {}

    async def get(self, voice_id: str) -> LocalVoice | None:
        """The stored voice, or ``None``."""
        return self._voices.get(voice_id)

    async def put(self, voice: LocalVoice) -> None:
        """Store or replace a voice."""
        self._voices[voice.voice_id] = voice

    async def delete(self, voice_id: str) -> bool:
        """Remove a voice; ``False`` when it was not there."""
        return self._voices.pop(voice_id, None) is not None

    async def all(self) -> Sequence[LocalVoice]:
        """Every stored voice."""
        return list(self._voices.values())


def voice_id_for(key: str) -> str:
    """Local voice ids derive from the enrolment key, so a repeated enrol adopts the first voice."""
    return f"local-{key_digest(key, 20)}"


def _provider_voice(voice: LocalVoice) -> ProviderVoice:
    return ProviderVoice(
        provider=PROVIDER,
        voice_id=voice.voice_id,
        name=voice.name,
        enrolment_key=voice.enrolment_key,
        language=voice.language,
        metadata={"engine": ENGINE, "profile": msgspec.to_builtins(voice.profile)},
    )


class LocalProvider:
    """Offline provider: enrolment measures the sample, synthesis adapts the stock hibari voice to it.

    Its CPU work runs on `cpu`, the process's executor, in `owner`'s lane (None: system work);
    `working_for` gives the same provider working for another user.
    """

    name = PROVIDER
    sample_rules = SAMPLE_RULES

    def __init__(self, store: ProfileStore | None = None, *, cpu: CpuExecutor, owner: Owner = None) -> None:
        self.store: ProfileStore = store if store is not None else InMemoryProfileStore()
        self._cpu = cpu
        self._owner = owner

    def working_for(self, owner: Owner) -> LocalProvider:
        """This provider (its store, its executor) with its work queued in `owner`'s lane."""
        return LocalProvider(self.store, cpu=self._cpu, owner=owner)

    async def enrol(
        self,
        samples: Sequence[SampleRef],
        *,
        name: str,
        language: str | None,
        transcript: str | None,
        key: str,
    ) -> ProviderVoice:
        """Measure the sample's voice profile and store it under the key's voice id."""
        self.sample_rules.check(PROVIDER, samples, language)
        if (existing := await self.find(key)) is not None:
            return existing
        with long_calls(queued=True):  # a sample's pitch track and spectra: seconds of CPU for a long one
            profile = await self._cpu.run(self._owner, _profile_of, samples[0].data)
        voice = LocalVoice(
            voice_id=voice_id_for(key),
            name=name,
            language=primary_language(language or "en"),
            enrolment_key=key,
            profile=profile,
        )
        await self.store.put(voice)
        return _provider_voice(voice)

    async def find(self, key: str) -> ProviderVoice | None:
        """The voice enrolled with ``key``, if stored."""
        voice = await self.store.get(voice_id_for(key))
        return _provider_voice(voice) if voice is not None else None

    async def get(self, voice_id: str) -> ProviderVoice:
        """One stored voice; ``VoiceNotFoundError`` when absent."""
        voice = await self.store.get(voice_id)
        if voice is None:
            raise VoiceNotFoundError(PROVIDER, "The voice does not exist.", provider_code="voice_not_found")
        return _provider_voice(voice)

    async def list(self) -> Sequence[ProviderVoice]:
        """Every stored voice."""
        return [_provider_voice(v) for v in await self.store.all()]

    async def delete(self, voice_id: str) -> None:
        """Forget a voice; ``VoiceNotFoundError`` when absent."""
        if not await self.store.delete(voice_id):
            raise VoiceNotFoundError(PROVIDER, "The voice does not exist.", provider_code="voice_not_found")

    async def synthesize(self, voice: ProviderVoice, text: str, *, meter: SendMeter | None = None) -> SynthesisResult:
        """Speak ``text``; the profile comes from the store, else from ``voice.metadata['profile']``. The engine is
        sent the text once (``meter``)."""
        if meter is not None:
            await meter.before_send()
        profile = await self._profile(voice, text)
        rendered = [part async for part in self._rendered(_render, phrases(text), profile)]
        rate = rendered[0][1]
        audio = await self._cpu.run(self._owner, _wav_of, [signal for signal, _ in rendered], rate)
        return SynthesisResult(audio=audio, mime_type="audio/wav", sample_rate=rate, model=MODEL)

    async def stream(
        self, voice: ProviderVoice, text: str, *, meter: SendMeter | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Speak ``text`` as 24 kHz PCM, a phrase at a time (each phrase is rendered whole); the engine is sent the text
        once (``meter``)."""
        if meter is not None:
            await meter.before_send()
        profile = await self._profile(voice, text)
        cut = stream_phrases(text)
        # Where the first phrase was cut short, the engine's silence after it and before the next (each phrase
        # is spoken as a sentence, in 0.3-0.4 s of silence each side) would put 0.6 s mid-sentence.
        joined = len(cut) > len(phrases(text))
        async with aclosing(self._rendered(_pcm_of, cut, profile, first_ahead=True)) as rendered:
            async for index, pcm in _numbered(rendered):
                before = STREAM_LEAD_S if index == 0 else CUT_PAUSE_S / 3 if joined and index == 1 else None
                yield trimmed(pcm, before=before, after=CUT_PAUSE_S * 2 / 3 if joined and index == 0 else None)

    async def _rendered(
        self,
        make: Callable[[str, VoiceProfile], R],
        cut: Sequence[str],
        profile: VoiceProfile,
        *,
        first_ahead: bool = False,
    ) -> AsyncGenerator[R, None]:
        """``make(phrase, profile)`` for each phrase of the text (``cut``, its phrases) in turn, each queued on the CPU
        executor (the first, and the voice's load where the process has not loaded it, ahead of its owner's other
        waiting work with ``first_ahead``: a stream's listener hears nothing before it). A phrase with nothing
        speakable in it is passed over, as the engine passes over such a sentence; ``empty_text`` only when no phrase
        of the text speaks."""
        first = self._cpu.submit_ahead if first_ahead else self._cpu.submit
        if not prepared():
            # At the process's priority, even for a job that yields to other users' (`backend.cpu`): loading the
            # voice holds the GIL through much of its CPU, and on a niced thread that a busy core kept waiting, a first
            # render took two minutes and held the process's event loop up to 34 s at a time. A stream's goes ahead of
            # its owner's waiting work, as its first phrase does: its listener hears nothing before either.
            with yielding(False):
                await first(self._owner, prepare)
        unspeakable: PermanentProviderError | None = None
        spoke = False
        for phrase in cut:
            try:
                queue = self._cpu.submit if spoke else first
                made = await queue(self._owner, make, phrase, profile)
            except PermanentProviderError as exc:
                if exc.provider_code != "empty_text":
                    raise
                unspeakable = exc
                continue
            spoke = True
            yield made
        if not spoke and unspeakable is not None:
            raise unspeakable

    async def _profile(self, voice: ProviderVoice, text: str) -> VoiceProfile:
        """The voice's profile, once the engine is sure it can speak ``text`` in the voice's language
        (UnsupportedLanguageError otherwise: the stored voice's language decides, see ``local.language``)."""
        if not text.strip():
            raise PermanentProviderError(PROVIDER, "There is no text to speak.", provider_code="empty_text")
        stored = await self.store.get(voice.voice_id)
        if stored is not None:
            profile, language = stored.profile, stored.language
        elif "profile" in voice.metadata:
            profile, language = msgspec.convert(voice.metadata["profile"], VoiceProfile), voice.language or "en"
        else:
            raise VoiceNotFoundError(PROVIDER, "The voice does not exist.", provider_code="voice_not_found")
        if (refused := refusal(language, text)) is not None:
            raise refused
        return profile


def _profile_of(data: bytes) -> VoiceProfile:
    try:
        signal, rate = wav_to_float(data)
        profile = measure(signal, rate)
    except ValueError as exc:
        raise PermanentProviderError(
            PROVIDER, "The sample has no usable speech.", provider_code="no_speech", operator_detail=str(exc)
        ) from exc
    return profile


def _render(text: str, profile: VoiceProfile) -> tuple[Signal, int]:
    try:
        return render(text, profile)
    except ValueError as exc:
        # Punctuation alone, or no word the G2P reads: the same text always fails.
        raise PermanentProviderError(
            PROVIDER, "There is nothing speakable in the text.", provider_code="empty_text", operator_detail=str(exc)
        ) from exc


def phrases(text: str) -> list[str]:
    """``text`` in the phrases it is rendered in: at most ``PHRASE_CHARS`` each where the text allows a cut,
    none shorter than ``MIN_PHRASE_CHARS`` unless the whole text is."""
    out: list[str] = []
    for piece in pieces(text, PHRASE_CHARS):
        if out and min(len(out[-1]), len(piece)) < MIN_PHRASE_CHARS:
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def stream_phrases(text: str) -> list[str]:
    """``text``'s `phrases` as a stream renders them: the first cut short (`FIRST_PHRASE_CHARS`) when what it
    keeps is two words or more (`MIN_FIRST_PHRASE_CHARS`) and what it leaves is a phrase (`MIN_PHRASE_CHARS`)."""
    cut = phrases(text)
    if not cut:
        return cut
    first = cut[0]
    comma = next((n + 1 for n, char in enumerate(first[:FIRST_PHRASE_CHARS]) if char in ",;:"), 0)
    end = comma if comma >= MIN_FIRST_PHRASE_CHARS else first.rfind(" ", 0, FIRST_PHRASE_CHARS + 1)
    head, rest = first[:end].strip(), first[end:].strip()
    if len(head) < MIN_FIRST_PHRASE_CHARS or " " not in head or len(rest) < MIN_PHRASE_CHARS:
        return cut
    return [head, rest, *cut[1:]]


def _wav_of(signals: list[Signal], rate: int) -> bytes:
    """The phrases' audio, one after another, as one WAV file."""
    return float_to_wav(np.concatenate(signals), rate)


async def _numbered(chunks: AsyncGenerator[bytes, None]) -> AsyncGenerator[tuple[int, bytes], None]:
    index = 0
    async for chunk in chunks:
        yield index, chunk
        index += 1


def trimmed(pcm: bytes, *, before: float | None, after: float | None) -> bytes:
    """A rendered phrase's 16-bit PCM with at most ``before`` seconds of silence kept before its first sound and
    ``after`` after its last (None: all of it). A stream trims where a cut (`stream_phrases`) joins two phrases
    mid-sentence (a third of `CUT_PAUSE_S` before, two thirds after) and before its first sound
    (`STREAM_LEAD_S`). Sound is a sample over `_SOUND` (1 % of full scale, 40 dB under the voice's peaks); the
    silence kept takes in the quieter edges of the words."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > _SOUND)
    if (before is None and after is None) or loud.size == 0:
        return pcm
    start = 0 if before is None else max(0, int(loud[0]) - round(before * STREAM_SAMPLE_RATE))
    end = samples.size if after is None else min(samples.size, int(loud[-1]) + 1 + round(after * STREAM_SAMPLE_RATE))
    return samples[start:end].tobytes()


def _pcm_of(text: str, profile: VoiceProfile) -> bytes:
    """``text`` rendered, as the PCM a stream sends (the engine speaks at ``STREAM_SAMPLE_RATE``)."""
    signal, _ = _render(text, profile)
    return (np.clip(signal, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
