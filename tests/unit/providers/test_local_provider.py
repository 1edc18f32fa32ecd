"""The offline ``local`` provider: pitch follows the reference, output is speech-like."""

from __future__ import annotations

import asyncio
import io
import threading
import uuid
import wave
from collections.abc import Callable
from contextlib import aclosing

import numpy as np
import pytest
import pyworld

from backend.cpu import BACKGROUND_NICE, CpuExecutor, yielding
from backend.providers.base import ProviderVoice, SampleRef
from backend.providers.errors import PermanentProviderError, VoiceNotFoundError
from backend.providers.local import engine
from backend.providers.local import provider as provider_module
from backend.providers.local.provider import (
    CUT_PAUSE_S,
    FIRST_PHRASE_CHARS,
    MIN_FIRST_PHRASE_CHARS,
    MIN_PHRASE_CHARS,
    PHRASE_CHARS,
    STREAM_LEAD_S,
    InMemoryProfileStore,
    LocalProvider,
    phrases,
    stream_phrases,
    trimmed,
)
from backend.text import pieces
from backend.wav import float_to_wav, wav_to_float
from tests.unit.test_cpu import BOUND_S, nice_here

RATE = 24000
SHORT = "Please call Stella and ask her to bring these things."
LONG = (
    "Please call Stella and ask her to bring these things with her from the store: six spoons of fresh "
    "snow peas, five thick slabs of blue cheese, and maybe a snack for her brother Bob."
)


def harmonic_voice(median_hz: float, seconds: float = 6.0) -> bytes:
    """A speech-like test signal: gliding harmonic tone in ~4 Hz syllable bursts with pauses."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = median_hz * np.power(2.0, (2.0 / 12.0) * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    signal = np.zeros_like(t)
    for k in range(1, int(4000 / (median_hz * 1.2))):
        formant = 1.0 + 2.0 * np.exp(-((((k * median_hz) - 700.0) / 300.0) ** 2))
        signal += formant / k * np.sin(k * phase)
    syllables = np.clip(np.sin(2 * np.pi * 4.0 * t), 0.0, None) ** 0.5
    signal *= syllables
    return float_to_wav(0.5 * signal / np.max(np.abs(signal)), RATE)


def median_f0(audio: bytes) -> float:
    x, rate = wav_to_float(audio)
    f0, times = pyworld.dio(x, rate, f0_floor=50.0, f0_ceil=800.0, frame_period=5.0)
    f0 = pyworld.stonemask(x, f0, times, rate)
    return float(np.median(f0[f0 > 0]))


def sample(audio: bytes) -> SampleRef:
    return SampleRef(data=audio, mime_type="audio/wav", duration_s=6.0, sample_rate=RATE, channels=1)


async def test_output_pitch_follows_each_reference_an_octave_apart(cpu: CpuExecutor) -> None:
    provider = LocalProvider(cpu=cpu)
    low, high = harmonic_voice(110.0), harmonic_voice(220.0)
    reference = {"low": median_f0(low), "high": median_f0(high)}
    assert reference["high"] / reference["low"] == pytest.approx(2.0, rel=0.05)
    for key, audio in (("low", low), ("high", high)):
        voice = await provider.enrol([sample(audio)], name=key, language="en", transcript=None, key=key)
        result = await provider.synthesize(voice, LONG)
        assert median_f0(result.audio) == pytest.approx(reference[key], rel=0.10)


async def test_output_is_speech_like_and_scales_with_text_length(cpu: CpuExecutor) -> None:
    provider = LocalProvider(cpu=cpu)
    voice = await provider.enrol([sample(harmonic_voice(150.0))], name="v", language="en", transcript=None, key="k")
    short = await provider.synthesize(voice, SHORT)
    long = await provider.synthesize(voice, LONG)
    assert short.mime_type == "audio/wav"
    with wave.open(io.BytesIO(long.audio)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
    x_short, rate = wav_to_float(short.audio)
    x_long, _ = wav_to_float(long.audio)
    ratio = len(x_long) / len(x_short)
    assert 2.0 < ratio < 4.5  # LONG has ~3x the syllables of SHORT
    assert len(x_short) / rate > 1.0
    assert float(np.sqrt(np.mean(x_long**2))) > 0.05  # not silence
    f0, _ = pyworld.dio(x_long, rate, frame_period=5.0)
    assert 0.2 < float(np.mean(f0 > 0)) < 0.95  # voiced and unvoiced stretches, like speech (a tone is 1)


async def test_profile_is_json_metadata_and_enrol_is_idempotent_per_key(cpu: CpuExecutor) -> None:
    store = InMemoryProfileStore()
    provider = LocalProvider(store, cpu=cpu)
    first = await provider.enrol(
        [sample(harmonic_voice(180.0))], name="v", language="en-GB", transcript=None, key="attempt-9"
    )
    again = await provider.enrol(
        [sample(harmonic_voice(100.0))], name="v", language="en", transcript=None, key="attempt-9"
    )
    assert again.voice_id == first.voice_id
    assert again.metadata["profile"] == first.metadata["profile"]
    profile = first.metadata["profile"]
    assert profile["median_f0_hz"] == pytest.approx(180.0, rel=0.05)
    assert len(profile["envelope_db"]) == len(profile["band_hz"])
    assert "offline stand-in" in first.metadata["engine"]
    assert (await provider.find("attempt-9")) == first
    assert [v.voice_id for v in await provider.list()] == [first.voice_id]

    # A voice persisted elsewhere (metadata only) still synthesizes from its stored profile. A sentence,
    # not two words: a pitch is only measured steadily over a few seconds of speech.
    detached = ProviderVoice(provider="local", voice_id="local-x", language="en", metadata=first.metadata)
    result = await LocalProvider(cpu=cpu).synthesize(detached, SHORT)
    assert median_f0(result.audio) == pytest.approx(profile["median_f0_hz"], rel=0.10)

    await provider.delete(first.voice_id)
    assert await provider.find("attempt-9") is None
    with pytest.raises(VoiceNotFoundError):
        await provider.delete(first.voice_id)
    with pytest.raises(VoiceNotFoundError):
        await provider.synthesize(first.__class__(provider="local", voice_id=first.voice_id), "hi")


async def test_silent_or_wrong_samples_are_refused(cpu: CpuExecutor) -> None:
    provider = LocalProvider(cpu=cpu)
    silence = float_to_wav(np.zeros(RATE * 5), RATE)
    with pytest.raises(PermanentProviderError) as no_speech:
        await provider.enrol([sample(silence)], name="v", language="en", transcript=None, key="s")
    assert no_speech.value.provider_code == "no_speech"
    voice = await provider.enrol([sample(harmonic_voice(150.0))], name="v", language="en", transcript=None, key="k")
    with pytest.raises(PermanentProviderError) as unspeakable:
        await provider.synthesize(voice, "...")
    assert unspeakable.value.provider_code == "empty_text"
    mp3 = SampleRef(data=b"ID3", mime_type="audio/mpeg", duration_s=5.0)
    with pytest.raises(PermanentProviderError) as fmt:
        await provider.enrol([mp3], name="v", language="en", transcript=None, key="m")
    assert fmt.value.safe_message == "unsupported audio format"


def pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def as_read(x: np.ndarray) -> bytes:
    """A WAV's samples as `wav_to_float` read them, back to their 16-bit PCM."""
    return np.round(x * 32768.0).astype("<i2").tobytes()


async def test_a_stream_is_the_synthesized_speech_of_its_phrases_as_24_khz_pcm(cpu: CpuExecutor) -> None:
    provider = LocalProvider(cpu=cpu)
    voice = await provider.enrol([sample(harmonic_voice(150.0))], name="v", language="en", transcript=None, key="s")
    head, rest = stream_phrases(SHORT)
    parts = [wav_to_float((await provider.synthesize(voice, phrase)).audio) for phrase in (head, rest)]
    assert {rate for _, rate in parts} == {24000}
    chunks = [chunk async for chunk in provider.stream(voice, SHORT)]
    # The same phrases rendered alike (the model's durations and its noise are fixed), sample for sample, but
    # for the silence trimmed before the first sound and where the cut joins them.
    assert chunks == [
        trimmed(as_read(parts[0][0]), before=STREAM_LEAD_S, after=CUT_PAUSE_S * 2 / 3),
        trimmed(as_read(parts[1][0]), before=CUT_PAUSE_S / 3, after=None),
    ]
    # A file of the first phrase waits about 0.3 s for its first sound; the stream, STREAM_LEAD_S.
    assert first_sound(pcm16(parts[0][0])) > 0.25
    assert first_sound(chunks[0]) == pytest.approx(STREAM_LEAD_S, abs=1 / RATE)
    whole, _ = wav_to_float((await provider.synthesize(voice, SHORT)).audio)
    # Cut and joined, the sentence is about as long as spoken whole: no second's silence mid-sentence.
    assert abs(sum(len(chunk) for chunk in chunks) // 2 - whole.size) < 0.25 * RATE
    with pytest.raises(PermanentProviderError):
        _ = [chunk async for chunk in provider.stream(voice, " ")]


def first_sound(pcm: bytes) -> float:
    """Seconds before the first sample over 1 % of full scale."""
    return int(np.argmax(np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32)) > 328)) / RATE


def test_a_trim_keeps_every_sound_and_the_silence_asked_for_each_side() -> None:
    silence, tone = np.zeros(RATE // 2), np.full(RATE // 4, 0.5)
    phrase = pcm16(np.concatenate([silence, tone, silence]))
    kept = np.frombuffer(trimmed(phrase, before=0.05, after=0.1), dtype="<i2")
    assert kept.size == round((0.25 + 0.15) * RATE)
    assert first_sound(kept.tobytes()) == pytest.approx(0.05, abs=1 / RATE)
    assert np.abs(kept.astype(np.int32)).sum() == np.abs(np.frombuffer(phrase, dtype="<i2").astype(np.int32)).sum()
    assert len(trimmed(phrase, before=None, after=0.1)) // 2 == round((0.5 + 0.25 + 0.1) * RATE)
    assert trimmed(phrase, before=None, after=None) == phrase
    assert trimmed(pcm16(silence), before=0.05, after=0.05) == pcm16(silence)


#: Five sentences of 54 characters, two too long to share a phrase: each is rendered as a call of its own.
PARAGRAPH = " ".join(f"Sentence number {n} is here, and it is not a long one." for n in range(5))


def test_a_text_is_cut_into_phrases_that_lose_nothing_and_never_leave_a_word_alone() -> None:
    assert phrases("Thanks for calling, how can I help you today?") == ["Thanks for calling, how can I help you today?"]
    cut = phrases(PARAGRAPH)
    assert len(cut) == 5
    assert all(MIN_PHRASE_CHARS <= len(phrase) <= PHRASE_CHARS for phrase in cut)
    assert " ".join(cut) == PARAGRAPH
    # A cut that would leave "Bob." on its own (a word without its sentence's intonation) keeps it with its clause.
    clause = "Please ask Stella to bring these few things with her from the store, six spoons of fresh snow peas,"
    assert pieces(f"{clause} Bob.", PHRASE_CHARS) == [clause, "Bob."]
    assert phrases(f"{clause} Bob.") == [f"{clause} Bob."]


def test_a_streams_first_phrase_is_cut_short_at_a_comma_or_after_its_first_words() -> None:
    assert stream_phrases("Thanks for calling, how can I help you today?") == [
        "Thanks for calling,",
        "how can I help you today?",
    ]
    # No comma early enough: the words that fit; the rest of the text is as `phrases` cuts it.
    assert stream_phrases(PARAGRAPH) == [
        "Sentence number 0 is",
        "here, and it is not a long one.",
        *phrases(PARAGRAPH)[1:],
    ]
    for text in (SHORT, PARAGRAPH, "Yes, I would love to come over to your place tonight."):
        head, *_ = cut = stream_phrases(text)
        assert MIN_FIRST_PHRASE_CHARS <= len(head) <= FIRST_PHRASE_CHARS
        assert " " in head
        assert " ".join(cut) == text
    # Kept whole: a text too short to leave a phrase after the cut, and a first word too long to cut after.
    assert stream_phrases("Hello there, how are you?") == ["Hello there, how are you?"]
    long_word = "Pneumonoultramicroscopicsilicovolcanoconiosis is a word that is long, is it not?"
    assert stream_phrases(long_word) == phrases(long_word)


async def test_a_long_stream_renders_a_phrase_per_call_so_another_users_call_runs_before_it_ends() -> None:
    async with CpuExecutor(1) as one:
        store = InMemoryProfileStore()
        alice = LocalProvider(store, cpu=one, owner=uuid.uuid4())
        voice = await alice.enrol([sample(harmonic_voice(150.0))], name="v", language="en", transcript=None, key="s")
        events: list[str] = []
        first = asyncio.Event()

        async def listen() -> None:
            async for _ in alice.stream(voice, PARAGRAPH):
                events.append("alice")
                first.set()

        listening = asyncio.create_task(listen())
        await asyncio.wait_for(first.wait(), 60)
        # Alice's next phrase runs or waits now; Bob's call goes before the one after it.
        bob = await one.run(uuid.uuid4(), lambda: events.append("bob"))
        await asyncio.wait_for(listening, 60)
    assert bob is None
    assert events.count("alice") == 6  # the five sentences, the first cut short in two
    assert events.index("bob") < 3, events


async def test_a_phrase_with_nothing_to_say_is_passed_over_unless_nothing_else_speaks(cpu: CpuExecutor) -> None:
    provider = LocalProvider(cpu=cpu)
    voice = await provider.enrol([sample(harmonic_voice(150.0))], name="v", language="en", transcript=None, key="s")
    spoken = "Sentence number one is here, and it is not a long one."
    with_punctuation = f"{spoken} {'- ' * 30}".strip()
    assert len(phrases(with_punctuation)) == 2
    assert len(stream_phrases(with_punctuation)) == 3  # the sentence's first words on their own
    chunks = [chunk async for chunk in provider.stream(voice, with_punctuation)]
    assert len(chunks) == 2
    with pytest.raises(PermanentProviderError) as nothing:
        await provider.synthesize(voice, "- " * 80)
    assert nothing.value.provider_code == "empty_text"


async def test_a_job_that_yields_loads_the_voice_at_the_process_priority_and_renders_niced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As in a process that has not rendered yet (this one may have).
    monkeypatch.setattr(engine, "_PREPARED", threading.Event())
    ran: list[tuple[str, int]] = []

    def noted(name: str, call: Callable[..., object]) -> Callable[..., object]:
        def call_noting(*args: object) -> object:
            ran.append((name, nice_here()))
            return call(*args)

        return call_noting

    monkeypatch.setattr(provider_module, "prepare", noted("prepare", engine.prepare))
    monkeypatch.setattr(provider_module, "render", noted("render", engine.render))
    ours = nice_here()
    async with CpuExecutor(1) as one:
        local = LocalProvider(cpu=one, owner=uuid.uuid4())
        voice = await local.enrol([sample(harmonic_voice(150.0))], name="v", language="en", transcript=None, key="y")
        with yielding(True):
            await local.synthesize(voice, SHORT)
            await local.synthesize(voice, SHORT)
    niced = min(19, ours + BACKGROUND_NICE)
    assert ran == [("prepare", ours), ("render", niced), ("render", niced)]


def test_the_voice_is_measured_once_however_many_threads_prepare_it_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_PREPARED", threading.Event())
    measured: list[object] = []
    both = threading.Barrier(2)

    # Counted, not cached: each call is a measurement.
    monkeypatch.setattr(engine, "voice_traits", measured.append)

    def prepare_together() -> None:
        both.wait(10)
        engine.prepare()

    threads = [threading.Thread(target=prepare_together) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(measured) == 1
    assert engine.prepared()


async def test_a_streams_first_render_loads_the_voice_ahead_of_its_owners_waiting_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stream's listener hears nothing until the voice is loaded: that load goes ahead of the owner's work already
    waiting (other jobs' phrases and marks), as the stream's first phrase does."""
    ran: list[str] = []
    loading = asyncio.Event()

    def loaded() -> None:
        ran.append("prepare")
        engine.prepare()

    monkeypatch.setattr(provider_module, "prepare", loaded)
    owner = uuid.uuid4()
    async with CpuExecutor(1) as one:
        local = LocalProvider(cpu=one, owner=owner)
        voice = await local.enrol([sample(harmonic_voice(150.0))], name="v", language="en", transcript=None, key="z")
        # As in a process that has not rendered yet (this one may have).
        monkeypatch.setattr(engine, "_PREPARED", threading.Event())
        for name in ("submit", "submit_ahead"):
            queue = getattr(one, name)

            def watched(
                who: uuid.UUID, fn: Callable[..., object], *args: object, queue: Callable[..., object] = queue
            ) -> object:
                if fn is loaded:
                    loading.set()
                return queue(who, fn, *args)

            monkeypatch.setattr(one, name, watched)
        started, gate = threading.Event(), threading.Event()

        def hold() -> None:
            started.set()
            gate.wait(BOUND_S)

        held = one.submit(owner, hold)
        await asyncio.wait_for(asyncio.to_thread(started.wait, BOUND_S), BOUND_S)
        waiting = [one.submit(owner, ran.append, f"waiting-{index}") for index in range(2)]

        async def first_chunk() -> bytes:
            async with aclosing(local.stream(voice, SHORT)) as chunks:
                return await anext(chunks)

        first = asyncio.ensure_future(first_chunk())
        await asyncio.wait_for(loading.wait(), BOUND_S)
        gate.set()
        await asyncio.wait_for(asyncio.gather(held, *waiting, first), BOUND_S)
    assert ran == ["prepare", "waiting-0", "waiting-1"]
