"""Speak text with the hibari voice, moved towards a profile in the model's own parameters.

The model predicts a spectrum a frame (see ``hibari_voice``) and one inverse STFT makes it audio, so the
adaptation costs a few array operations before that step, not an analysis and resynthesis of the finished
audio:

- pace: the model's ``speed`` input scales its phoneme durations towards the sample's syllable rate;
- pitch: the F0 contour is mapped onto the sample's median and spread (in semitones);
- timbre: the frequency axis of the magnitude branches is warped by the ratio of the sample's formant
  spacing to the voice's, so a voice moved down an octave gets a longer vocal tract rather than sounding
  like a slowed tape; then the average envelope is tilted towards the sample's, within ±12 dB.

The harmonic branch holds the envelope (``lh``) only where the voice's own harmonics fall: between them the
model's values are never heard, and 1% of the bins stand more than 25 dB above the envelope (a few 100 dB). So
``lh`` is read at the voice's harmonics and interpolated between them: a moved harmonic never takes one of
those values (read from the bins as they stand, an octave down's stood up to 44 dB over the voice's loudest
harmonic, and the harmonics' share of the 1-4 kHz energy fell from 0.58 to 0.52). Its phase turn (``th``)
cannot be carried over the same way: neighbouring harmonics' angles are unrelated, and values interpolated
between them change from frame to frame and blur the moved harmonics above 1 kHz. They get a fixed phase
instead, the same in every frame (a pulse-dispersion all-pass, as vocoders such as MELP use), so each
harmonic stays steady and the pulses are spread over the period.
"""

from __future__ import annotations

import functools
import threading
from typing import Final

import msgspec
import numpy as np
from hibari import dsp

from backend.providers.local.hibari_voice import Array, Frames, HibariVoice
from backend.providers.local.profile import (
    BAND_HZ,
    FORMANT_COUNT,
    Signal,
    VoiceProfile,
    formant_dispersion,
    formants,
    mean_envelope_db,
    syllable_rate,
    world_analysis,
)

MAX_ENVELOPE_GAIN_DB: Final = 12.0
RANGE_SCALE_LIMITS: Final = (0.5, 2.0)
#: How far the voice's pace may be slowed (<1) or hurried (>1) towards the sample's.
SPEED_LIMITS: Final = (0.6, 1.6)
#: How far the frequency axis may be squeezed (<1, a longer vocal tract) or stretched: about a deep man's
#: formant spacing to a child's, against the voice's.
FORMANT_RATIO_LIMITS: Final = (0.75, 1.3)
#: For a profile stored before formants were measured, the formant ratio is the pitch ratio to this power:
#: women's average formants lie about 17% above men's for an F0 about 1.7 times men's (Peterson and Barney,
#: 1952), log(1.17) / log(1.7) = 0.3.
PITCH_TO_FORMANT: Final = 0.3
#: A voiced frame's F0 stays above ``dsp.synth``'s voicing threshold (40 Hz), however low the profile.
MIN_F0_HZ: Final = 50.0
#: The voice peaks about 7 dB under full scale (its RMS near -27 dBFS); doubled, it peaks near the 0.9 the
#: engine spoke at before.
OUTPUT_GAIN: Final = 2.0
#: A phrase whose peak would pass this is scaled down as a whole.
MAX_PEAK: Final = 0.95
#: The dispersion phase: quadratic in frequency (group delay rising 1.6 ms a kHz) to ``DISPERSION_KNEE_HZ``,
#: then a constant 3.1 ms group delay. Beside zero phase it lowers the output's crest factor about 5 dB for a
#: voice moved to 100 Hz, as steady.
DISPERSION_HZ: Final = 800.0
DISPERSION_KNEE_HZ: Final = 2000.0
#: Read once per process to learn the voice's own pace, pitch, formants and envelope.
VOICE_TEXT: Final = (
    "Every voice keeps its own pace. This short passage is read once, so the engine knows how quickly "
    "the stock voice speaks before it slows down or hurries to match a sample. When the sunlight strikes "
    "raindrops in the air, they act as a prism and form a rainbow, a long round arch with its path high above."
)

_BINS: Final = dsp.N_FFT // 2 + 1
_BIN_HZ: Final = dsp.SR / dsp.N_FFT
_VOICING_HZ: Final = 40.0  # dsp.pulses' threshold: a frame under it is unvoiced


class VoiceTraits(msgspec.Struct, frozen=True, kw_only=True):
    """What the engine knows of the voice as it is, measured on ``VOICE_TEXT`` as a sample is at enrolment."""

    pace_hz: float
    median_f0_hz: float
    f0_sd_semitones: float
    formants_hz: list[float]
    envelope_freqs: Signal
    envelope_db: Signal


class Adaptation(msgspec.Struct, frozen=True, kw_only=True):
    """How the voice's parameters move for one profile."""

    speed: float
    source_f0_hz: float
    target_f0_hz: float
    pitch_scale: float
    #: For each output bin, the (fractional) bin of the voice it takes its envelope from.
    source_bins: Array
    #: Per bin, the envelope tilt as a natural-log magnitude.
    gain: Array


def render(text: str, profile: VoiceProfile, *, voice: HibariVoice | None = None) -> tuple[Signal, int]:
    """Mono float samples in [-1, 1] and their sample rate for ``text`` in ``profile``'s voice;
    ``ValueError`` when there is nothing to say."""
    hibari = voice or HibariVoice.shared()
    plan = adaptation(profile, voice_traits(hibari))
    audio = np.concatenate([hibari.synthesize(adapt(f, plan)) for f in hibari.frames(text, plan.speed)])
    audio = audio.astype(np.float64) * OUTPUT_GAIN
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return (audio * (MAX_PEAK / peak) if peak > MAX_PEAK else audio), hibari.sample_rate


#: Set once the process's voice is loaded and measured (`prepare`).
_PREPARED: Final = threading.Event()
#: Held while the voice is measured: `functools.cache` lets two threads that both miss it measure twice.
_PREPARING: Final = threading.Lock()


def prepared() -> bool:
    """Whether the process's voice is loaded and measured (`prepare`): a render then loads and measures nothing."""
    return _PREPARED.is_set()


def prepare() -> None:
    """Load the process's voice and measure it (`HibariVoice.shared`, `voice_traits`), as its first render would
    before speaking: about 1.5 CPU-s, once per process."""
    with _PREPARING:
        if not _PREPARED.is_set():
            voice_traits(HibariVoice.shared())
            _PREPARED.set()


@functools.cache
def voice_traits(voice: HibariVoice) -> VoiceTraits:
    """``voice``'s pace, pitch, formants and mean envelope, from one reading of ``VOICE_TEXT`` (once)."""
    frames = voice.frames(VOICE_TEXT)
    audio = np.concatenate([voice.synthesize(f) for f in frames]).astype(np.float64)
    f0 = np.concatenate([f.f0 for f in frames])
    voiced = f0[f0 > _VOICING_HZ].astype(np.float64)
    median = float(np.median(voiced))
    analysis = world_analysis(audio, voice.sample_rate, with_aperiodicity=False)
    freqs, mean_db = mean_envelope_db(analysis.sp, analysis.f0, voice.sample_rate)
    return VoiceTraits(
        pace_hz=syllable_rate(audio, voice.sample_rate),
        median_f0_hz=median,
        f0_sd_semitones=float(np.std(12.0 * np.log2(voiced / median))),
        formants_hz=formants(audio, voice.sample_rate, analysis.f0),
        envelope_freqs=freqs,
        envelope_db=mean_db,
    )


def adaptation(profile: VoiceProfile, traits: VoiceTraits) -> Adaptation:
    """The pace, pitch map, warp and tilt that move the voice towards ``profile``."""
    ratio = formant_ratio(profile, traits)
    bands = np.asarray(BAND_HZ)
    # The voice's envelope once warped, in the profile's bands (both with their mean removed: shape only).
    warped = np.interp(bands / ratio, traits.envelope_freqs, traits.envelope_db)
    gain_db = np.clip(
        np.asarray(profile.envelope_db) - (warped - warped.mean()), -MAX_ENVELOPE_GAIN_DB, MAX_ENVELOPE_GAIN_DB
    )
    freqs = np.arange(_BINS) * _BIN_HZ
    low, high = RANGE_SCALE_LIMITS
    return Adaptation(
        speed=speed(traits.pace_hz, profile.syllable_rate_hz),
        source_f0_hz=traits.median_f0_hz,
        target_f0_hz=profile.median_f0_hz,
        pitch_scale=float(np.clip(profile.f0_sd_semitones / max(traits.f0_sd_semitones, 1e-3), low, high)),
        source_bins=(np.arange(_BINS) / ratio).astype(np.float32),
        gain=(np.interp(freqs, bands, gain_db) * np.log(10.0) / 20.0).astype(np.float32),
    )


def formant_ratio(profile: VoiceProfile, traits: VoiceTraits) -> float:
    """The sample's formant spacing over the voice's, within ``FORMANT_RATIO_LIMITS``; for a profile stored
    before formants were measured, estimated from the pitch ratio (see ``PITCH_TO_FORMANT``)."""
    if len(profile.formants_hz) == FORMANT_COUNT == len(traits.formants_hz):
        ratio = formant_dispersion(profile.formants_hz) / formant_dispersion(traits.formants_hz)
    else:
        ratio = (profile.median_f0_hz / traits.median_f0_hz) ** PITCH_TO_FORMANT
    return float(np.clip(ratio, *FORMANT_RATIO_LIMITS))


def speed(source_rate: float, target_rate: float) -> float:
    """The model's speed that brings its syllable rate towards the sample's, within ``SPEED_LIMITS`` (1.0
    when either rate is unknown)."""
    if source_rate <= 0 or target_rate <= 0:
        return 1.0
    return float(np.clip(target_rate / source_rate, *SPEED_LIMITS))


def adapt(frames: Frames, plan: Adaptation) -> Frames:
    """One sentence's parameters moved by ``plan``: F0 mapped, envelope warped and tilted."""
    lh, th, ln, lr, phi, f0 = frames
    voiced = f0 > _VOICING_HZ
    new_f0 = f0.copy()
    new_f0[voiced] = np.maximum(
        plan.target_f0_hz * np.power(f0[voiced] / plan.source_f0_hz, plan.pitch_scale), MIN_F0_HZ
    )
    lh = _at_harmonics(lh, f0, plan.source_bins)
    # Each harmonic keeps its magnitude, so the frame's power moves with the number of harmonics: keep it.
    lh += 0.5 * np.log(np.where(voiced, new_f0 / np.where(voiced, f0, 1.0), 1.0))
    gain = plan.gain[:, None]
    return Frames(
        lh + gain,
        np.broadcast_to(_DISPERSION, th.shape),
        _warped(ln, plan.source_bins) + gain,
        _warped(lr, plan.source_bins) + gain,
        phi,
        new_f0,
    )


def _dispersion() -> Array:
    """``th`` for the dispersion phase (``dsp.synth`` turns each bin by pi * tanh(th)), one value a bin."""
    freqs = np.arange(_BINS) * _BIN_HZ
    bent = np.minimum(freqs, DISPERSION_KNEE_HZ)
    phase = np.pi * (bent / DISPERSION_HZ) ** 2
    phase += 2 * np.pi * DISPERSION_KNEE_HZ / DISPERSION_HZ**2 * (freqs - bent)
    wrapped = np.mod(phase + np.pi, 2 * np.pi) - np.pi
    th: Array = np.arctanh(np.clip(wrapped / np.pi, -0.9999, 0.9999)).astype(np.float32)[:, None]
    return th


_DISPERSION: Final = _dispersion()


def _at_harmonics(lh: Array, f0: Array, source_bins: Array) -> Array:
    """``lh`` read at each voiced frame's harmonics of ``f0`` and interpolated between them, at ``source_bins``
    (below the first harmonic the first holds; past the last bin the last). An unvoiced frame has no
    harmonics to hear it: it is left as it is."""
    out = lh.copy()
    columns = np.flatnonzero(f0 > _VOICING_HZ)
    count = len(columns)
    spacing = f0[columns] / np.float32(_BIN_HZ)
    position = source_bins[:, None] / spacing[None, :]  # in harmonics
    below = np.maximum(np.floor(position), 1.0)
    between = np.clip(position - below, 0.0, 1.0)
    voiced = lh[:, columns].ravel()  # a bin's row after another: bin b of voiced frame j is at b * count + j
    column = np.arange(count)
    read = np.zeros((_BINS, count), np.float32)
    for harmonic, weight in ((below, 1.0 - between), (below + 1.0, between)):
        at = np.minimum(harmonic * spacing[None, :], _BINS - 1.0)
        low = at.astype(np.intp)
        frac = at - low
        high = np.minimum(low + 1, _BINS - 1)
        read += (voiced[low * count + column] * (1.0 - frac) + voiced[high * count + column] * frac) * weight
    out[:, columns] = read
    return out


def _warped(a: Array, source_bins: Array) -> Array:
    """``a`` read at ``source_bins`` (linear between bins, the last bin past the end)."""
    at = np.minimum(source_bins, _BINS - 1.0)
    low = at.astype(np.intp)
    high = np.minimum(low + 1, _BINS - 1)
    frac = (at - low)[:, None]
    out: Array = a[low] * (1.0 - frac) + a[high] * frac
    return out
