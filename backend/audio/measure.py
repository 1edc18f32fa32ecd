"""Measurements of a decoded sample: loudness, peaks, clipping, speech (VAD) and an SNR estimate."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import webrtcvad

from backend.audio.decode import DecodedAudio

F32 = npt.NDArray[np.float32]

#: WebRTC VAD works on 10/20/30 ms frames of 16-bit PCM at 8/16/32/48 kHz.
VAD_RATE: Final = 16000
VAD_FRAME_S: Final = 0.03
VAD_FRAME: Final = int(VAD_RATE * VAD_FRAME_S)
#: 0 (least) to 3 (most aggressive at refusing non-speech).
VAD_MODE: Final = 2
#: The VAD judges by absolute level and misses quiet speech, so its input is brought to this loudness
#: (the 99th-percentile frame RMS), amplifying by at most ``VAD_MAX_GAIN_DB``.
VAD_LEVEL_DBFS: Final = -20.0
VAD_MAX_GAIN_DB: Final = 40.0
#: The VAD takes steady tones and loud steady noise for speech. Speech varies in level from frame to
#: frame by many dB (syllables, consonants, pauses), even at 0 dB SNR; steady sounds by a fraction of one.
SPEECH_LEVEL_SPREAD_DB: Final = 1.0
#: Shortest run of speech frames (120 ms) that can start or end the speech span.
MIN_SPEECH_RUN: Final = 4
#: A sample at or above this magnitude (-0.09 dBFS) counts as clipped.
CLIP_LEVEL: Final = 0.99
TRUE_PEAK_OVERSAMPLING: Final = 4


def _lowpass_taps(count: int, cutoff: float, *, beta: float) -> npt.NDArray[np.float64]:
    """A low-pass FIR filter of ``count`` taps cutting off at ``cutoff`` (a share of the Nyquist frequency): the
    windowed sinc under a Kaiser window of ``beta``, scaled to a gain of 1 at DC."""
    offsets = np.arange(count) - (count - 1) / 2
    taps = cutoff * np.sinc(cutoff * offsets) * np.kaiser(count, beta)
    return np.asarray(taps / taps.sum(), dtype=np.float64)


#: A 48-tap (12 per phase) interpolation filter, the length ITU-R BS.1770-4 Annex 2 uses for 4x.
#: Designed in numpy, not by scipy.signal's `firwin` (the same taps, a test holds), which `resample` says why.
_TRUE_PEAK_FILTER: Final = (_lowpass_taps(48, 1 / TRUE_PEAK_OVERSAMPLING, beta=6.0) * 4).astype(np.float32)
_TRUE_PEAK_DELAY: Final = (_TRUE_PEAK_FILTER.size - 1) // 2
_TRUE_PEAK_TAPS: Final = _TRUE_PEAK_FILTER.size // TRUE_PEAK_OVERSAMPLING
#: The filter's phases as columns, each reversed: a window of `_TRUE_PEAK_TAPS` input samples times this is the
#: oversampled points of one input step, so the oversampling is one matrix product (BLAS), not a loop per point.
_TRUE_PEAK_PHASES: Final = np.ascontiguousarray(
    np.stack([_TRUE_PEAK_FILTER[phase::TRUE_PEAK_OVERSAMPLING][::-1] for phase in range(TRUE_PEAK_OVERSAMPLING)], 1)
)
#: Input samples oversampled at once: their windows (12 floats each) stay a few MB, whatever the length.
_TRUE_PEAK_BLOCK: Final = 1 << 16
#: BS.1770-4's gating: 400 ms blocks every 100 ms, an absolute gate at -70 LKFS and a relative one 10 LU under the
#: gated mean; the channel weights of L, R, C, Ls, Rs.
_LOUDNESS_BLOCK_S: Final = 0.4
_LOUDNESS_STEP: Final = 0.25
_ABSOLUTE_GATE: Final = -70.0
_RELATIVE_GATE: Final = -10.0
_CHANNEL_WEIGHTS: Final = (1.0, 1.0, 1.0, 1.41, 1.41)
#: Noise is taken from the pauses when there are this many seconds of them, else from the quietest frames.
MIN_PAUSE_S: Final = 0.3
QUIET_FRAME_SHARE: Final = 0.1
#: Without pauses, the quietest frames stand for the noise only in this much audio: in a shorter clip
#: that is all speech they are the speech's own soft sounds, and the SNR would be made up.
MIN_QUIET_SAMPLE_S: Final = 3.0
_POWER_FLOOR: Final = 1e-10  # -100 dBFS: digital silence
SNR_CEILING_DB: Final = 100.0


@dataclass(frozen=True, slots=True)
class Speech:
    """VAD result on 30 ms frames: which frames hold speech, and each frame's power (unnormalised)."""

    frames: npt.NDArray[np.bool_]
    power: npt.NDArray[np.float64]

    @property
    def seconds(self) -> float:
        """Seconds of speech."""
        return float(self.frames.sum()) * VAD_FRAME_S

    @property
    def ratio(self) -> float:
        """Share of frames that hold speech."""
        return float(self.frames.mean()) if self.frames.size else 0.0

    def span_s(self) -> tuple[float, float] | None:
        """Start of the first and end of the last run of speech, or None without speech.

        Runs shorter than ``MIN_SPEECH_RUN`` frames do not count: the VAD flags a few frames at the very
        start of noisy audio while it adapts, and clicks or breaths can trip it.
        """
        edges = np.diff(np.concatenate([[0], self.frames.astype(np.int8), [0]]))
        (starts,) = np.nonzero(edges == 1)
        (ends,) = np.nonzero(edges == -1)
        runs = [(start, end) for start, end in zip(starts, ends, strict=True) if end - start >= MIN_SPEECH_RUN]
        if not runs:
            return None
        return float(runs[0][0]) * VAD_FRAME_S, float(runs[-1][1]) * VAD_FRAME_S


@dataclass(frozen=True, slots=True)
class Measurements:
    """Everything the quality report and the validation need, measured once."""

    duration_s: float
    sample_rate: int
    channels: int
    loudness_lufs: float | None
    sample_peak_dbfs: float | None
    true_peak_dbtp: float | None
    snr_db: float | None
    clipping_ratio: float
    speech: Speech
    mono: F32


def measure(audio: DecodedAudio) -> Measurements:
    """Measure a decoded sample (the samples are read, never changed)."""
    mono = downmix(audio.samples)
    speech = detect_speech(mono, audio.sample_rate)
    return Measurements(
        duration_s=audio.duration_s,
        sample_rate=audio.sample_rate,
        channels=audio.channels,
        loudness_lufs=integrated_loudness(audio.samples, audio.sample_rate),
        sample_peak_dbfs=_dbfs(float(np.max(np.abs(audio.samples)))),
        true_peak_dbtp=_dbfs(true_peak(audio.samples)),
        snr_db=snr_estimate(speech),
        clipping_ratio=float(np.count_nonzero(np.abs(audio.samples) >= CLIP_LEVEL)) / audio.samples.size,
        speech=speech,
        mono=mono,
    )


def downmix(samples: F32) -> F32:
    """Mono as the mean of the channels."""
    if samples.shape[0] == 1:
        return np.asarray(samples[0], dtype=np.float32)
    return np.asarray(samples.mean(axis=0, dtype=np.float32), dtype=np.float32)


def resample(mono: F32, rate: int, target: int) -> F32:
    """Polyphase resampling of mono float32 audio (a no-op at the same rate)."""
    if rate == target:
        return mono
    # Imported on first use: scipy.signal's import (it loads scipy.stats, interpolate and optimize) costs over a
    # second of CPU, which every process start would pay, most of them never measuring audio.
    from scipy.signal import resample_poly  # noqa: PLC0415

    common = math.gcd(rate, target)
    return np.asarray(resample_poly(mono, target // common, rate // common), dtype=np.float32)


def detect_speech(mono: F32, rate: int) -> Speech:
    """Frames of speech by WebRTC VAD, with steady tones and noise (which fool it) counted as none."""
    at_vad_rate = resample(mono, rate, VAD_RATE)
    count = at_vad_rate.size // VAD_FRAME
    frames = at_vad_rate[: count * VAD_FRAME].reshape(count, VAD_FRAME).astype(np.float64)
    power = np.mean(np.square(frames), axis=1)
    if count == 0:
        return Speech(frames=np.zeros(0, dtype=np.bool_), power=power)
    loud = float(np.percentile(power, 99))
    gain_db = min(VAD_LEVEL_DBFS - 10 * math.log10(max(loud, _POWER_FLOOR)), VAD_MAX_GAIN_DB)
    pcm = np.clip(frames * 10 ** (gain_db / 20) * 32767.0, -32768, 32767).astype("<i2")
    vad = webrtcvad.Vad(VAD_MODE)
    labels = np.fromiter((vad.is_speech(row.tobytes(), VAD_RATE) for row in pcm), dtype=np.bool_, count=count)
    if labels.any():
        level_db = 10 * np.log10(np.maximum(power[labels], _POWER_FLOOR))
        if float(np.std(level_db)) < SPEECH_LEVEL_SPREAD_DB:
            labels[:] = False
    return Speech(frames=labels, power=power)


def snr_estimate(speech: Speech) -> float | None:
    """Speech-to-noise ratio in dB: speech frames against the pauses (or, in a long enough clip without
    pauses, the quietest frames); None when there is no speech or nothing to take the noise from."""
    if not speech.frames.any():
        return None
    pauses = speech.power[~speech.frames]
    if pauses.size * VAD_FRAME_S >= MIN_PAUSE_S:
        noise = float(np.median(pauses))
    elif speech.power.size * VAD_FRAME_S < MIN_QUIET_SAMPLE_S:
        return None
    else:
        quietest = np.sort(speech.power)[: max(1, int(speech.power.size * QUIET_FRAME_SHARE))]
        noise = float(np.mean(quietest))
    signal = float(np.mean(speech.power[speech.frames])) - noise
    noise = max(noise, _POWER_FLOOR)
    snr = 10 * math.log10(max(signal, _POWER_FLOOR) / noise)
    return min(snr, SNR_CEILING_DB)


def integrated_loudness(samples: F32, rate: int) -> float | None:
    """EBU R128 / ITU-R BS.1770-4 integrated loudness in LUFS of (channels, n) audio; None for silence or under one
    400 ms block.

    pyloudnorm's `Meter.integrated_loudness` to float rounding (its K-weighting filters, block bounds and gates; a
    test compares them), with its two filter stages in one pass and each block's energy summed from its four 100 ms
    steps instead of sliced out block by block.
    """
    from scipy.signal import sosfilt  # noqa: PLC0415 - on first use, as in `resample`

    size = samples.shape[1]
    if size <= rate * _LOUDNESS_BLOCK_S:
        return None
    blocks = round((size / rate - _LOUDNESS_BLOCK_S) / (_LOUDNESS_BLOCK_S * _LOUDNESS_STEP)) + 1
    steps_per_block = round(1 / _LOUDNESS_STEP)
    # Block j spans steps j .. j + 3: its end, 0.4 (j / 4 + 1) s, is the start of block j + 4, to the same float.
    bounds = (_LOUDNESS_BLOCK_S * (np.arange(blocks + steps_per_block) * _LOUDNESS_STEP) * rate).astype(np.int64)
    power = np.zeros(blocks)
    for channel, weight in zip(samples.astype(np.float64), _CHANNEL_WEIGHTS, strict=False):
        # One zero past the last bound: `reduceat`'s last sum runs to the end, and is dropped.
        energy = np.zeros(max(size, int(bounds[-1])) + 1)
        energy[:size] = np.square(sosfilt(_k_weighting(rate), channel))
        steps = np.add.reduceat(energy, bounds)[:-1]
        step_sums = np.concatenate([[0.0], np.cumsum(steps)])
        power += weight * (step_sums[steps_per_block:] - step_sums[:-steps_per_block]) / (_LOUDNESS_BLOCK_S * rate)
    with np.errstate(divide="ignore"):
        block_loudness = -0.691 + 10 * np.log10(power)
    gated = power[block_loudness >= _ABSOLUTE_GATE]
    if gated.size == 0:
        return None
    relative = -0.691 + 10 * math.log10(float(gated.mean())) + _RELATIVE_GATE
    kept = power[(block_loudness > relative) & (block_loudness > _ABSOLUTE_GATE)]
    return -0.691 + 10 * math.log10(float(kept.mean())) if kept.size and kept.mean() > 0 else None


@functools.cache
def _k_weighting(rate: int) -> npt.NDArray[np.float64]:
    """BS.1770's two K-weighting stages at ``rate``, as pyloudnorm designs them, as second-order sections."""
    from pyloudnorm.iirfilter import IIRfilter  # noqa: PLC0415 - it imports scipy.signal: on first use, as in `resample`

    stages = (
        IIRfilter(4.0, 1 / math.sqrt(2), 1500.0, rate, "high_shelf"),
        IIRfilter(0.0, 0.5, 38.0, rate, "high_pass"),
    )
    return np.array([np.concatenate([stage.b * stage.passband_gain, stage.a]) for stage in stages])


def true_peak(samples: F32) -> float:
    """Largest magnitude after 4x oversampling (BS.1770 true peak) over all channels, linear."""
    return max((float(np.max(peak_envelope(channel), initial=0.0)) for channel in samples), default=0.0)


def peak_envelope(signal: F32) -> F32:
    """For each sample, the largest magnitude among the 4x oversampled points from it to the next."""
    size, oversampling, taps = signal.size, TRUE_PEAK_OVERSAMPLING, _TRUE_PEAK_TAPS
    padded = np.zeros(size + 2 * (taps - 1), dtype=np.float32)
    padded[taps - 1 : taps - 1 + size] = signal
    windows = np.lib.stride_tricks.sliding_window_view(padded, taps)
    envelope = np.empty(size, dtype=np.float32)
    for start in range(0, size, _TRUE_PEAK_BLOCK):
        stop = min(size, start + _TRUE_PEAK_BLOCK)
        # The oversampled points `first`..`last` (the filter's delay taken off) are the rows first // 4 ..
        # last // 4 of the product, read row after row.
        first, last = _TRUE_PEAK_DELAY + oversampling * start, _TRUE_PEAK_DELAY + oversampling * stop - 1
        rows = np.ascontiguousarray(windows[first // oversampling : last // oversampling + 1]) @ _TRUE_PEAK_PHASES
        points = np.abs(rows.ravel()[first % oversampling : first % oversampling + oversampling * (stop - start)])
        points = points.reshape(stop - start, oversampling)
        # Column by column: numpy's `max(axis=1)` over rows of four is a strided reduction per row, much slower
        # than these elementwise maxima (the same values: a maximum is exact).
        block = envelope[start:stop]
        np.copyto(block, points[:, 0])
        for column in range(1, oversampling):
            np.maximum(block, points[:, column], out=block)
    return envelope


def _dbfs(linear: float) -> float | None:
    return 20 * math.log10(linear) if linear > 0 else None
