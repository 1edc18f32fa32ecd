"""The ``local`` engine: hibari's bundled voice, offline, moved towards a profile in the model's parameters."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

import hibari
import numpy as np
import pytest
import pyworld
from scipy.signal import lfilter, welch

from backend.providers.base import STREAM_SAMPLE_RATE
from backend.providers.local import engine
from backend.providers.local.engine import (
    FORMANT_RATIO_LIMITS,
    PITCH_TO_FORMANT,
    SPEED_LIMITS,
    Adaptation,
    adapt,
    adaptation,
    formant_ratio,
    render,
    speed,
    voice_traits,
)
from backend.providers.local.hibari_voice import HibariVoice
from backend.providers.local.profile import (
    Signal,
    VoiceProfile,
    formant_dispersion,
    formants,
    world_analysis,
)

SENTENCE = (
    "The quick brown fox jumps over the lazy dog while seven happy children sing cheerful songs about "
    "summer rain today."
)


@pytest.fixture(scope="module")
def voice() -> HibariVoice:
    return HibariVoice.shared()


def median_f0(x: Signal, rate: int) -> float:
    f0, times = pyworld.dio(x, rate, f0_floor=50.0, f0_ceil=800.0, frame_period=5.0)
    f0 = pyworld.stonemask(x, f0, times, rate)
    return float(np.median(f0[f0 > 0]))


def profile_of(median_f0_hz: float, *, formants_hz: list[float] | None = None, rate: float = 0.0) -> VoiceProfile:
    """A profile with a flat envelope (no tilt): only pitch, and formants when given, move the voice."""
    return VoiceProfile(
        median_f0_hz=median_f0_hz,
        f0_sd_semitones=2.0,
        syllable_rate_hz=rate,
        envelope_db=[0.0] * 24,
        formants_hz=formants_hz or [],
    )


def test_only_the_bundled_voice_is_loaded_and_nothing_is_fetched(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reached: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        reached.append(args)
        raise OSError("the network is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(hibari.voices, "download", refuse)
    monkeypatch.setenv("HIBARI_HOME", str(tmp_path))  # an empty cache: no voice there to find either

    loaded = HibariVoice()  # not the shared one: this load is the one under test
    audio, rate = render("Nothing here comes from the internet.", profile_of(120.0), voice=loaded)

    assert reached == []
    assert Path(loaded.model_path).parent == Path(hibari.__file__).parent / "assets"
    assert list(tmp_path.iterdir()) == []
    assert rate == STREAM_SAMPLE_RATE  # streams send the engine's samples as they are
    assert len(audio) / rate > 1.0
    assert median_f0(audio, rate) == pytest.approx(120.0, rel=0.06)


def test_a_text_with_nothing_to_say_is_refused(voice: HibariVoice) -> None:
    assert voice.phonemes("Hello there. ... Bye.") == ["həlˈO ðˈɛɹ.", "bˈI."]  # noqa: RUF001 - IPA, meant
    for text in ("...", "- - - -", "!?"):
        with pytest.raises(ValueError, match="nothing to say"):
            render(text, profile_of(120.0), voice=voice)


def test_the_voice_as_it_is_is_speech(voice: HibariVoice) -> None:
    rate = voice.sample_rate
    spoken = voice.speak(SENTENCE).astype(np.float64)
    seconds = len(spoken) / rate
    assert 4.0 < seconds < 9.0  # 20 words at a conversational 140-280 words a minute
    assert len(voice.speak("The quick brown fox.")) / rate < 0.4 * seconds
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean(spoken**2)))
    assert -40.0 < rms_dbfs < -12.0
    freqs, power = welch(spoken, rate, nperseg=1024)
    assert power[(freqs >= 80) & (freqs <= 5000)].sum() / power.sum() > 0.9
    f0, _ = pyworld.dio(spoken, rate, frame_period=5.0)
    assert 0.3 < float(np.mean(f0 > 0)) < 0.95  # voiced and unvoiced stretches
    assert 150.0 < median_f0(spoken, rate) < 250.0  # the voice is a woman's


@pytest.mark.parametrize("target_hz", [100.0, 270.0])
def test_the_profile_sets_the_pitch_and_the_level_stays(voice: HibariVoice, target_hz: float) -> None:
    rate = voice.sample_rate
    own = voice_traits(voice).median_f0_hz
    at_own, _ = render(SENTENCE, profile_of(own), voice=voice)
    moved, _ = render(SENTENCE, profile_of(target_hz), voice=voice)
    assert abs(12 * np.log2(median_f0(moved, rate) / target_hz)) < 1.0  # within a semitone
    # Each frame's power is kept as the number of harmonics changes.
    level = 20 * np.log10(np.sqrt(np.mean(moved**2)) / np.sqrt(np.mean(at_own**2)))
    assert abs(level) < 3.0
    assert float(np.max(np.abs(moved))) <= 0.95


def test_no_moved_harmonic_takes_a_value_from_between_the_voices_own(
    voice: HibariVoice, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "MAX_ENVELOPE_GAIN_DB", 0.0)  # no tilt: the magnitudes as the model gave them
    traits = voice_traits(voice)
    frames = voice.frames(SENTENCE)[0]
    plan = adaptation(profile_of(traits.median_f0_hz / 2, formants_hz=traits.formants_hz), traits)
    moved = adapt(frames, plan)
    voiced = np.flatnonzero(frames.f0 > 40.0)
    own_peak, moved_peak, model_peak = [], [], []
    for j in voiced:
        # The two 20 Hz bins either side of each harmonic, to the first past 4 kHz.
        at = np.arange(1, 4000 / frames.f0[j] + 2) * frames.f0[j] / 20.0
        own_peak.append(frames.lh[np.concatenate([np.floor(at), np.ceil(at)]).astype(int), j].max())
        # Less the half-octave's power compensation, which lifts every bin of the frame alike.
        moved_peak.append(moved.lh[:200, j].max() - 0.5 * np.log(moved.f0[j] / frames.f0[j]))
        model_peak.append(frames.lh[:200, j].max())
    # Between its harmonics the model's magnitudes spike far above any harmonic's (never heard there);
    # read at the voice's harmonics, a moved harmonic is never louder than the loudest of them.
    # (Moved onto the voice's bins as they stand, the octave down's harmonics reached 44 dB over them.)
    assert max(np.subtract(model_peak, own_peak)) > np.log(10.0)  # a spike 20 dB over the loudest harmonic
    assert max(np.subtract(moved_peak, own_peak)) < 0.01


def test_the_formant_ratio_moves_the_envelope_not_only_the_pitch(
    voice: HibariVoice, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No tilt: towards the flat envelope of these profiles it would flatten the formants it is to move.
    monkeypatch.setattr(engine, "MAX_ENVELOPE_GAIN_DB", 0.0)
    traits = voice_traits(voice)
    assert len(traits.formants_hz) == 4
    rate = voice.sample_rate

    def spacing(ratio: float) -> float:
        profile = profile_of(traits.median_f0_hz, formants_hz=[f * ratio for f in traits.formants_hz])
        assert formant_ratio(profile, traits) == pytest.approx(ratio)
        audio, _ = render(SENTENCE, profile, voice=voice)
        return formant_dispersion(formants(audio, rate, world_analysis(audio, rate, with_aperiodicity=False).f0))

    # The estimate from one sentence is within about 5% (0.85 measured 0.85, 1.15 measured 1.10; unwarped, the
    # formants stay where they were whatever the pitch).
    own = spacing(1.0)
    assert 0.80 < spacing(0.85) / own < 0.92  # a longer vocal tract, a man's
    assert 1.07 < spacing(1.15) / own < 1.22


def test_a_profile_stored_before_formants_were_measured_takes_its_ratio_from_its_pitch(voice: HibariVoice) -> None:
    traits = voice_traits(voice)
    half = profile_of(traits.median_f0_hz / 2)
    assert formant_ratio(half, traits) == pytest.approx(0.5**PITCH_TO_FORMANT)
    assert formant_ratio(profile_of(traits.median_f0_hz * 8), traits) == FORMANT_RATIO_LIMITS[1]
    assert formant_ratio(profile_of(traits.median_f0_hz / 8), traits) == FORMANT_RATIO_LIMITS[0]


def test_formants_are_found_where_a_vowel_has_them() -> None:
    rate, f0 = 16000, 100.0
    pulses = np.zeros(rate * 2)
    pulses[:: round(rate / f0)] = 1.0
    vowel = pulses
    for centre, bandwidth in ((600.0, 80.0), (1400.0, 90.0), (2500.0, 120.0), (3400.0, 150.0)):
        radius = np.exp(-np.pi * bandwidth / rate)
        vowel = lfilter([1.0], [1.0, -2 * radius * np.cos(2 * np.pi * centre / rate), radius**2], vowel)
    voiced = np.full(len(vowel) // 80 + 1, f0)  # one F0 every 5 ms, all voiced
    found = formants(vowel / np.max(np.abs(vowel)), rate, voiced)
    # Autocorrelation LPC reads F1 of a pulse train about 6% high (637 Hz here), in a sample and the voice alike.
    assert found == pytest.approx([600.0, 1400.0, 2500.0, 3400.0], rel=0.08), found
    assert formant_dispersion(found) == pytest.approx(formant_dispersion([600.0, 1400.0, 2500.0, 3400.0]), rel=0.02)
    assert formants(np.zeros(rate), rate, np.zeros(rate // 80 + 1)) == []  # nothing voiced


def test_the_samples_pace_sets_the_models_speed(voice: HibariVoice) -> None:
    pace = voice_traits(voice).pace_hz
    assert 5.0 < pace < 12.0  # syllables a second, as the profile measures a sample
    assert speed(pace, pace) == pytest.approx(1.0)
    assert speed(pace, 0.0) == 1.0  # a sample whose pace was not measured
    assert speed(pace, pace * 10) == SPEED_LIMITS[1]
    assert speed(pace, pace / 10) == SPEED_LIMITS[0]

    def seconds(syllables_per_s: float) -> float:
        audio, rate = render(SENTENCE, profile_of(120.0, rate=syllables_per_s), voice=voice)
        return len(audio) / rate

    slow, fast = seconds(pace / 10), seconds(pace * 10)
    assert slow > 2.0 * fast  # 0.6 against 1.6 of the voice's pace
    assert slow / len(SENTENCE.split()) < 0.8  # still speech, not a crawl


def test_adapting_keeps_unvoiced_frames_unvoiced_and_voiced_ones_voiced(voice: HibariVoice) -> None:
    frames = voice.frames(SENTENCE)[0]
    plan: Adaptation = adaptation(profile_of(60.0), voice_traits(voice))
    moved = adapt(frames, plan)
    voiced = frames.f0 > 40.0  # dsp.synth's threshold
    assert np.array_equal(moved.f0 > 40.0, voiced)
    assert np.array_equal(moved.f0[~voiced], frames.f0[~voiced])
    assert all(a.shape == frames.lh.shape for a in (moved.lh, moved.th, moved.ln, moved.lr, moved.phi))


def test_a_twenty_word_sentence_renders_far_faster_than_real_time(voice: HibariVoice) -> None:
    profile = profile_of(100.0, formants_hz=[500.0, 1500.0, 2500.0, 3500.0], rate=5.0)
    render(SENTENCE, profile, voice=voice)  # onnxruntime sizes its buffers on the first run
    # CPU time, not wall-clock: on a shared machine the wall clock also counts other processes' turns.
    started = time.process_time()
    audio, rate = render(SENTENCE, profile, voice=voice)
    elapsed = time.process_time() - started
    # Generous: about 0.01 x real time on one core (bench/local_tts.py); even a contended core stays far under.
    assert elapsed < 0.25 * len(audio) / rate
