"""Perth-Net's signal processing around its networks, in numpy and scipy, as resemble-perth 1.0.1 does it
(`perth_watermarker.py`, `audio_processor.py`, `utils.py`, `model/`) with torch and torchaudio:

- audio at 32 kHz (other rates are resampled polyphase, as the library's detection does);
- STFT of 2048 points, hop 320, a periodic Hann window, frames centred (the signal reflected by 1024 samples
  at each end); magnitudes in dB (floored at 1e-9), normalised as (dB + 180) / 195;
- a frame is "quiet", and neither marked nor read, when its normalised magnitudes sum to 5 % or less of the
  loudest frame's;
- to mark: the encoder's stack reads bins 0-127 (0-2 kHz) and its output, zero on quiet frames, is added to
  those normalised magnitudes; the phase is kept; the inverse STFT (overlap-add, divided by the window's
  squared sum) gives the marked signal;
- to detect: each decoder branch reads bins 0-127 at its own time scale (x1.25 and x0.75 by linear
  interpolation with aligned corners, the quiet-frame mask by nearest neighbour), and gives a (attention, mark)
  pair per frame; each is averaged over the frames that are not quiet, and the marks are weighted by the
  softmax of the three attentions: the score, clipped to [0, 1].

Two differences from the library, neither of which changes a score by more than float rounding (tests and
docs/consent.md give the comparison): the mark is added as the inverse STFT of the change in magnitude alone,
so the signal keeps its length and everything above 2 kHz as it was (the library returns the whole signal
resynthesised, up to 319 samples shorter), and at other rates than 32 kHz that change is computed at 32 kHz and
resampled back, instead of the whole signal going to 32 kHz and back; long audio goes through the networks in
blocks of frames with the stacks' reach of context on each side, which gives the same frames as one pass.
The spectra are float32, as torch computes them, and marking reuses the phases its analysis read.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Final

import numpy as np
import numpy.typing as npt
import scipy.fft

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
#: A convolution stack: (128, frames) float32 in, (channels, frames) float32 out.
Stack = Callable[[F32], F32]

RATE: Final = 32000
N_FFT: Final = 2048
HOP: Final = 320
BINS: Final = N_FFT // 2 + 1
SUBBAND: Final = 128
_HALF: Final = N_FFT // 2
_MAGNITUDE_FLOOR: Final = 1e-9
_FLOOR_DB: Final = -180.0  # 20 log10(1e-9)
_HEADROOM_DB: Final = 15.0
_SPAN_DB: Final = -_FLOOR_DB + _HEADROOM_DB
#: torch clips dB / 20 to this before 10 ** it.
_MAX_LOG: Final = 10.0
#: A frame counts when its normalised magnitudes sum to more than this share of the loudest frame's.
QUIET_SHARE: Final = 0.05
#: The decoder's branches: time scales of the spectrogram each reads.
SCALES: Final = (1.25, 1.0, 0.75)
#: The largest denominator of the ratio a warp resamples by: within 0.2 cents of the pitch asked for, with a
#: polyphase filter short enough to make per call.
_WARP_DENOMINATOR: Final = 400
#: The resampling filters kept (`_low_pass`), and the largest ratio term whose filter is (20 x it taps): the rates
#: speech comes at (16, 22.05, 24, 44.1, 48 kHz to 32 kHz) and the warps, at most a few MB in all. An odd rate's
#: (any of 8-96 kHz reaches the detector, and 44,101 Hz makes close to a million taps) is designed per call, as scipy
#: does.
_KEPT_FILTERS: Final = 32
_KEPT_UP_TO: Final = 1000
#: Frames through a stack at once: 20 s of audio, with `REACH` frames of context either side.
BLOCK: Final = 2000
REACH: Final = 15
#: The shortest signal the centred STFT takes (its reflection needs more samples than half a window).
MIN_SAMPLES: Final = _HALF + 1
_WINDOW: Final = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
#: Overlap-add works in hops: a frame spans this many (its last partly).
_HOPS_PER_FRAME: Final = math.ceil(N_FFT / HOP)


def to_rate(samples: F32, rate: int, target: int) -> F32:
    """``samples`` resampled from ``rate`` to ``target`` by scipy's polyphase filter (as librosa's
    `res_type="polyphase"`, which the library detects with), as float32."""
    if rate == target:
        return samples
    # Imported on first use: scipy.signal's import (it loads scipy.stats, interpolate and optimize) costs over a
    # second of CPU, which every process start would pay, most of them never detecting a mark.
    from scipy.signal import resample_poly  # noqa: PLC0415

    common = math.gcd(rate, target)
    up, down = target // common, rate // common
    slower = max(up, down)
    if slower > _KEPT_UP_TO:
        return np.asarray(resample_poly(samples, up, down), dtype=np.float32)
    # The filter resample_poly would design, in the samples' own type as it would cast it: the same output.
    taps = _low_pass(slower).astype(samples.dtype if samples.dtype.kind == "f" else np.float64)
    return np.asarray(resample_poly(samples, up, down, window=taps), dtype=np.float32)


def _padded(signal: F32) -> F32:
    """The signal as the centred STFT frames it: at least `MIN_SAMPLES` long (zeros after a shorter one),
    reflected by half a window at each end."""
    if signal.size < MIN_SAMPLES:
        signal = np.concatenate([signal, np.zeros(MIN_SAMPLES - signal.size, dtype=np.float32)])
    return np.pad(signal.astype(np.float32), _HALF, mode="reflect")


def _frames(padded: F32) -> int:
    return 1 + (padded.size - N_FFT) // HOP


def _spectra(padded: F32, start: int, stop: int) -> npt.NDArray[np.complex64]:
    """The STFT of frames ``start`` to ``stop`` (frames, bins)."""
    windows = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[start * HOP : (stop - 1) * HOP + 1 : HOP]
    return np.asarray(scipy.fft.rfft(windows * _WINDOW, axis=1, workers=1))


def _normalised(magnitude: F32) -> F32:
    level = np.float32(20) * np.log10(np.maximum(magnitude, np.float32(_MAGNITUDE_FLOOR)))
    return np.asarray((level - np.float32(_FLOOR_DB)) / np.float32(_SPAN_DB), dtype=np.float32)


def _magnitude(normalised: F64) -> F64:
    return np.asarray(10.0 ** np.minimum((normalised * _SPAN_DB + _FLOOR_DB) / 20, _MAX_LOG))


def analyse(padded: F32) -> tuple[F32, F32]:
    """The normalised magnitudes of bins 0-127 (frames, 128) and the mask of frames that are not quiet
    (frames,), as 0.0 / 1.0, of a `_padded` signal."""
    subband, mask, _, _ = _analysed(padded)
    return subband, mask


def _analysed(padded: F32, *, periodicity: bool = False) -> tuple[F32, F32, npt.NDArray[np.complex64], F32 | None]:
    """`analyse`'s two, the complex spectrum of bins 0-127 (frames, 128), whose phases marking keeps, and with
    ``periodicity`` each frame's `voicing` from the same spectra (else None)."""
    frames = _frames(padded)
    subband = np.empty((frames, SUBBAND), dtype=np.float32)
    low_bins = np.empty((frames, SUBBAND), dtype=np.complex64)
    energy = np.empty(frames, dtype=np.float64)
    periodic = np.empty(frames, dtype=np.float32) if periodicity else None
    for start in range(0, frames, BLOCK):
        stop = min(frames, start + BLOCK)
        spectra = _spectra(padded, start, stop)
        normalised = _normalised(np.abs(spectra))
        subband[start:stop] = normalised[:, :SUBBAND]
        low_bins[start:stop] = spectra[:, :SUBBAND]
        energy[start:stop] = normalised.sum(axis=1, dtype=np.float32)
        if periodic is not None:
            periodic[start:stop] = _periodicity(spectra)
    mask = (energy > energy.max() * QUIET_SHARE).astype(np.float32)
    return subband, mask, low_bins, periodic


#: A frame is unvoiced when its autocorrelation reaches less than this share of its energy at every lag of a pitch
#: of 70-400 Hz: a fricative, a breath, a pause's noise; a vowel reads 0.6-1.0.
UNVOICED: Final = 0.4


def voicing(padded: F32) -> F32:
    """Each frame's periodicity (frames,) of a `_padded` signal: its windowed autocorrelation's highest peak at a
    lag of a pitch of 70-400 Hz, over its energy; under `UNVOICED` the frame is unvoiced."""
    frames = _frames(padded)
    out = np.empty(frames, dtype=np.float32)
    for start in range(0, frames, BLOCK):
        stop = min(frames, start + BLOCK)
        out[start:stop] = _periodicity(_spectra(padded, start, stop))
    return out


def _periodicity(spectra: npt.NDArray[np.complex64]) -> F32:
    """`voicing` of frames whose spectra (frames, bins) these are: the autocorrelation is the inverse transform of
    the power spectrum."""
    low, high = RATE // 400, RATE // 70
    correlation = scipy.fft.irfft(np.square(np.abs(spectra)), n=N_FFT, axis=1, workers=1)[:, : high + 1]
    return np.asarray(correlation[:, low:].max(axis=1) / np.maximum(correlation[:, 0], 1e-20), dtype=np.float32)


def run_stack(stack: Stack, features: F32) -> F32:
    """``stack`` over ``features`` (128, frames), block by block with `REACH` frames of context either side
    (the same frames as one pass: a stack's output frame depends on no frame further away)."""
    frames = features.shape[1]
    if frames <= BLOCK:
        return stack(features)
    parts = []
    for start in range(0, frames, BLOCK):
        low, high = max(0, start - REACH), min(frames, start + BLOCK + REACH)
        out = stack(np.ascontiguousarray(features[:, low:high]))
        parts.append(out[:, start - low : start - low + min(BLOCK, frames - start)])
    return np.concatenate(parts, axis=1)


def residual(encoder: Stack, padded: F32, unvoiced_gain: float = 1.0) -> F64:
    """What marking adds to the 32 kHz signal of ``padded`` (its first `HOP` x (frames - 1) samples), each unvoiced
    frame's share (`UNVOICED`) ``unvoiced_gain`` times the library's."""
    subband, mask, low_bins, periodic = _analysed(padded, periodicity=unvoiced_gain != 1.0)
    frames = subband.shape[0]
    change = run_stack(encoder, np.ascontiguousarray(subband.T)) * mask
    gains = None if periodic is None else np.where(periodic < UNVOICED, unvoiced_gain, 1.0)[:, None]
    overlap = np.zeros((frames + _HOPS_PER_FRAME, HOP), dtype=np.float64)
    for start in range(0, frames, BLOCK):
        stop = min(frames, start + BLOCK)
        touched = change[:, start:stop].T
        if not touched.any():
            continue
        phase = np.exp(1j * np.angle(low_bins[start:stop]))
        original = subband[start:stop].astype(np.float64)
        spectrum = np.zeros((stop - start, BINS), dtype=np.complex64)
        spectrum[:, :SUBBAND] = (_magnitude(original + touched) - _magnitude(original)) * phase
        if gains is not None:
            spectrum *= gains[start:stop]
        windowed = scipy.fft.irfft(spectrum, n=N_FFT, axis=1, workers=1) * _WINDOW
        hops = np.zeros((stop - start, _HOPS_PER_FRAME * HOP), dtype=np.float64)
        hops[:, :N_FFT] = windowed
        hops = hops.reshape(stop - start, _HOPS_PER_FRAME, HOP)
        for offset in range(_HOPS_PER_FRAME):
            overlap[start + offset : stop + offset] += hops[:, offset]
    length = HOP * (frames - 1)
    return np.asarray(overlap.ravel()[_HALF : _HALF + length] / _envelope(frames)[_HALF : _HALF + length])


def _envelope(frames: int) -> F64:
    """The squared window overlap-added over ``frames`` frames: what the inverse STFT divides by."""
    squared = np.zeros(_HOPS_PER_FRAME * HOP)
    squared[:N_FFT] = _WINDOW**2
    envelope = np.zeros((frames + _HOPS_PER_FRAME, HOP))
    for offset, part in enumerate(squared.reshape(_HOPS_PER_FRAME, HOP)):
        envelope[offset : frames + offset] += part
    return envelope.ravel()


def added(encoder: Stack, samples: F32, rate: int, unvoiced_gain: float = 1.0) -> F64:
    """What marking adds to ``samples`` (mono float32 at ``rate``), at that rate: as long as them, or up to a
    hop shorter at 32 kHz (the end past the last frame's centre is left as it is); unvoiced frames' share times
    ``unvoiced_gain`` (`residual`)."""
    at_rate = to_rate(samples, rate, RATE)
    change = residual(encoder, _padded(at_rate), unvoiced_gain)[: at_rate.size]
    if rate == RATE:
        return change
    return to_rate(change.astype(np.float32), RATE, rate)[: samples.size].astype(np.float64)


def _stretched(features: F32, size: int) -> F32:
    """``features`` (128, frames) linearly interpolated to ``size`` frames, corners aligned (torch's
    `interpolate(mode="linear", align_corners=True)`, in float32 as it computes)."""
    frames = features.shape[1]
    step = np.float32(frames - 1) / np.float32(size - 1) if size > 1 else np.float32(0)
    source = np.arange(size, dtype=np.float32) * step
    first = source.astype(np.int64)
    second = np.minimum(first + 1, frames - 1)
    weight = (source - first.astype(np.float32)).astype(np.float32)
    return np.asarray(features[:, first] * (np.float32(1) - weight) + features[:, second] * weight, dtype=np.float32)


def _nearest(mask: F32, size: int) -> F32:
    """``mask`` (frames,) resized to ``size`` by nearest neighbour (torch's `interpolate(mode="nearest")`)."""
    frames = mask.size
    if size == frames:
        return mask
    step = np.float32(frames) / np.float32(size)
    source = np.minimum(np.floor(np.arange(size, dtype=np.float32) * step).astype(np.int64), frames - 1)
    nearest: F32 = mask[source]
    return nearest


def score(branches: tuple[Stack, Stack, Stack], samples: F32, rate: int) -> float:
    """The decoder's score of ``samples`` (mono float32 at ``rate``), as the network gives it (the library
    clips it to [0, 1]); NaN when every frame is quiet (digital silence: nothing to read)."""
    return Reading(branches, to_rate(samples, rate, RATE)).score()[0]


class Reading:
    """The decoder's three branches' outputs on each frame of one signal (mono float32 at 32 kHz) at its own
    pitch, kept so that a score over some of its frames costs no second pass."""

    def __init__(self, branches: tuple[Stack, Stack, Stack], at_rate: F32) -> None:
        """Reads ``at_rate`` through ``branches`` (the decoder's stacks, in `SCALES`' order)."""
        self.padded = _padded(at_rate)
        subband, mask = analyse(self.padded)
        features = np.ascontiguousarray(subband.T)
        frames = features.shape[1]
        self._outputs: list[tuple[F32, F32]] = []
        for stack, scale in zip(branches, SCALES, strict=True):
            size = int(frames * scale)
            out = run_stack(stack, features if size == frames else _stretched(features, size))
            self._outputs.append((out, _nearest(mask, size)))

    def score(self, chosen: npt.NDArray[np.bool_] | None = None) -> tuple[float, int]:
        """The score over the frames that are not quiet, and of them only those ``chosen`` (frames,) when given;
        NaN when there are none; and how many frames the normal-speed branch read."""
        attentions, marks, counts = (np.zeros(len(self._outputs)) for _ in range(3))
        for index, (out, mask) in enumerate(self._outputs):
            weights = mask if chosen is None else mask * _nearest(chosen.astype(np.float32), mask.size)
            attentions[index] = float(np.dot(out[0], weights))
            marks[index] = float(np.dot(out[1], weights))
            counts[index] = float(weights.sum())
        if counts.min() == 0:
            return math.nan, 0
        return combined(attentions / counts, marks / counts), int(counts[SCALES.index(1.0)])


def means(branches: tuple[tuple[Stack, float], ...], parts: list[F32]) -> tuple[F64, F64] | None:
    """Each of ``branches`` (a decoder stack and the time scale it reads at)'s attention and mark outputs,
    averaged over the frames of ``parts`` (mono float32 at 32 kHz, each analysed on its own, its quiet frames
    left out); None when every frame of every part is quiet."""
    attentions, marks, counts = (np.zeros(len(branches)) for _ in range(3))
    analysed = [analyse(_padded(part)) for part in parts]
    # Excerpts of one length go through each stack as one batch (a call costs about as much as 15 frames).
    batched = len(analysed) > 1 and len({subband.shape[0] for subband, _ in analysed}) == 1
    batched = batched and analysed[0][0].shape[0] <= BLOCK
    groups = [analysed] if batched else [[one] for one in analysed]
    for group in groups:
        features = np.ascontiguousarray(np.stack([subband.T for subband, _ in group]))
        frames = features.shape[2]
        for index, (stack, scale) in enumerate(branches):
            size = int(frames * scale)
            outs = (
                stack(features if size == frames else np.stack([_stretched(one, size) for one in features]))
                if batched
                else [run_stack(stack, features[0] if size == frames else _stretched(features[0], size))]
            )
            for out, (_, mask) in zip(outs, group, strict=True):
                weights = _nearest(mask, size)
                attentions[index] += float(np.dot(out[0], weights))
                marks[index] += float(np.dot(out[1], weights))
                counts[index] += float(weights.sum())
    if counts.min() == 0:
        return None
    return attentions / counts, marks / counts


def combined(attentions: F64, marks: F64) -> float:
    """The score from the three branches' averaged outputs: their marks weighted by the softmax of their
    attentions."""
    attention = np.exp(attentions - attentions.max())
    return float(np.dot(marks, attention / attention.sum()))


def warped(samples: F32, cents: float) -> F32:
    """``samples`` at 32 kHz made ``cents`` longer and lower: resampled by 2 ** (cents / 1200) and read at 32 kHz
    again, which takes back a pitch raised, or a speed-up, by that many cents (and lengthens the time by as
    much, which the decoder's time scales absorb)."""
    if Fraction(2 ** (cents / 1200)).limit_denominator(_WARP_DENOMINATOR) == 1:
        return samples
    from scipy.signal import resample_poly  # noqa: PLC0415 - on first use, as in `to_rate`

    ratio, taps = _warp_filter(cents)
    return np.asarray(resample_poly(samples, ratio.numerator, ratio.denominator, window=taps), dtype=np.float32)


@functools.cache
def _warp_filter(cents: float) -> tuple[Fraction, F64]:
    """The ratio of a warp of ``cents`` and its `_low_pass` filter."""
    ratio = Fraction(2 ** (cents / 1200)).limit_denominator(_WARP_DENOMINATOR)
    return ratio, _low_pass(max(ratio.numerator, ratio.denominator))


@functools.lru_cache(maxsize=_KEPT_FILTERS)
def _low_pass(slower: int) -> F64:
    """The low-pass filter `resample_poly` designs for a ratio whose larger term is ``slower`` (the same taps: a
    Kaiser window of beta 5, ten periods of the slower rate either side), made once: designing it took two thirds
    of a warp's resampling, and a fifth of a stream's marking."""
    from scipy.signal import firwin  # noqa: PLC0415 - on first use, as in `to_rate`

    taps = np.asarray(firwin(2 * 10 * slower + 1, 1.0 / slower, window=("kaiser", 5.0)), dtype=np.float64)
    taps.flags.writeable = False
    return taps
