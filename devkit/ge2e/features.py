"""What GE2E (devkit/ge2e) reads: 16 kHz speech, its long silences cut, as 40-band power mel frames in partial
utterances of 1.6 s, the way the encoder was trained (resemblyzer 0.1.4's `audio.py` and `voice_encoder.py`).

The VAD here is not `backend.audio.measure`'s: that one judges whether a sample holds speech and how much; this
one reproduces the encoder's own preprocessing (mode 3, a moving average over 8 windows, short pauses kept),
so that a voiceprint is what the published weights were trained and calibrated on.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
import scipy.fft
import webrtcvad

from backend.audio.measure import downmix

F32 = npt.NDArray[np.float32]

RATE: Final = 16000
#: Volume is raised (never lowered) to this level before the VAD, as in training.
TARGET_DBFS: Final = -30.0
_INT16_MAX: Final = 2**15 - 1
VAD_WINDOW: Final = RATE * 30 // 1000
VAD_MODE: Final = 3
#: Windows averaged to smooth the VAD's decisions, and the longest pause (in windows) kept between speech.
VAD_AVERAGE: Final = 8
VAD_MAX_SILENCE: Final = 6
N_FFT: Final = 400  # 25 ms
HOP: Final = 160  # 10 ms
N_MELS: Final = 40
#: A partial utterance is this many mel frames (1.6 s); they start every ``PARTIAL_STEP`` frames (1.3 a second).
PARTIAL_FRAMES: Final = 160
PARTIAL_STEP: Final = round(RATE / 1.3 / HOP)
#: The last partial counts when audio covers this share of it (the rest is zeros).
MIN_COVERAGE: Final = 0.75
#: Speech (after the VAD) for one partial utterance: 1.2 s.
MIN_SPEECH_SAMPLES: Final = math.ceil(MIN_COVERAGE * PARTIAL_FRAMES * HOP)


def mono_16k(samples: npt.NDArray[np.floating], rate: int) -> F32:
    """``samples`` (mono ``(n,)`` or channels first ``(c, n)``, in [-1, 1]) as mono float32 at 16 kHz."""
    array = np.asarray(samples)
    if array.ndim not in {1, 2} or array.size == 0 or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"samples must be a non-empty float array of shape (n,) or (c, n), not {array.shape}")
    if not isinstance(rate, int) or rate <= 0:
        raise ValueError(f"rate must be a positive number of samples per second, not {rate!r}")
    channels = array.astype(np.float32, copy=False).reshape(-1, array.shape[-1])
    if not np.isfinite(channels).all():
        raise ValueError("samples must be finite")
    return resample(downmix(channels), rate)


def resample(mono: F32, rate: int) -> F32:
    """``mono`` at 16 kHz, resampled in the frequency domain: everything below 8 kHz kept as it is, nothing above.

    Not `backend.audio.measure.resample`: scipy's default polyphase filter there (61 taps at 48 kHz) takes 30 %
    off the top mel band (7.4-8 kHz), which the encoder reads as power, and moved a 48 kHz copy's print by up to
    0.012 a value. The input is zero-padded to a length whose FFT is fast (a prime length is ten times slower).
    """
    if rate == RATE:
        return mono
    common = math.gcd(rate, RATE)
    up, down = RATE // common, rate // common
    blocks = scipy.fft.next_fast_len(-(-mono.size // down), real=True)
    spectrum = scipy.fft.rfft(mono, n=blocks * down, workers=1)
    resampled = scipy.fft.irfft(spectrum, n=blocks * up, workers=1)[: round(mono.size * up / down)]
    return np.asarray(resampled * np.float32(up / down), dtype=np.float32)


def speech(mono: F32) -> F32:
    """``mono`` (16 kHz) raised to -30 dBFS if quieter, with its pauses longer than 180 ms cut out."""
    return kept_speech(mono)[0]


def kept_speech(mono: F32) -> tuple[F32, npt.NDArray[np.intp]]:
    """`speech` of ``mono``, and where it was: the index in ``mono`` of each ``VAD_WINDOW`` of samples kept, so
    that a place in the speech maps back to the recording's own time (`recording_seconds`)."""
    nothing = np.zeros(0, dtype=np.intp)
    rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64))))
    if rms == 0.0:
        return mono[:0], nothing
    gain_db = TARGET_DBFS - 20 * math.log10(rms)
    if gain_db > 0:
        mono = mono * np.float32(10 ** (gain_db / 20))
    windows = mono.size // VAD_WINDOW
    if windows == 0:
        return mono[:0], nothing
    mono = mono[: windows * VAD_WINDOW]
    # Clipped to int16 where training's code let loud peaks wrap around.
    pcm = np.clip(np.round(mono * _INT16_MAX), -_INT16_MAX - 1, _INT16_MAX).astype("<i2").reshape(windows, VAD_WINDOW)
    vad = webrtcvad.Vad(VAD_MODE)
    voiced = np.fromiter((vad.is_speech(row.tobytes(), RATE) for row in pcm), dtype=np.float64, count=windows)
    padded = np.concatenate([np.zeros((VAD_AVERAGE - 1) // 2), voiced, np.zeros(VAD_AVERAGE // 2)])
    sums = np.cumsum(padded)
    sums[VAD_AVERAGE:] = sums[VAD_AVERAGE:] - sums[:-VAD_AVERAGE]
    smoothed = np.round(sums[VAD_AVERAGE - 1 :] / VAD_AVERAGE).astype(bool)
    # Each voiced window keeps VAD_MAX_SILENCE // 2 windows either side (a binary dilation).
    reach = VAD_MAX_SILENCE // 2
    kept = np.convolve(smoothed, np.ones(2 * reach + 1))[reach : reach + windows] > 0
    return mono[np.repeat(kept, VAD_WINDOW)], np.flatnonzero(kept)


def recording_seconds(places: npt.NDArray[np.integer], kept_windows: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
    """Where sample indices ``places`` of the kept speech (`kept_speech`) lie in the recording, in seconds: the
    pauses the VAD cut are put back. A place at the end of the speech maps to the end of its last window."""
    window, offset = np.divmod(np.asarray(places, dtype=np.intp), VAD_WINDOW)
    last = kept_windows.size - 1
    at_end = window > last
    recorded = kept_windows[np.minimum(window, last)] * VAD_WINDOW + np.where(at_end, VAD_WINDOW, offset)
    return np.asarray(recorded / RATE, dtype=np.float64)


def partial_starts(length: int) -> list[int]:
    """The first mel frame of each partial utterance of ``length`` samples (one at least, the last dropped when
    audio covers less than ``MIN_COVERAGE`` of it and it is not the only one)."""
    frames = math.ceil((length + 1) / HOP)
    starts = list(range(0, max(1, frames - PARTIAL_FRAMES + PARTIAL_STEP + 1), PARTIAL_STEP))
    coverage = (length - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts


def _mel_filters() -> F32:
    """Slaney-style mel filters (librosa's default: Slaney's mel scale, each band normalised to unit area)."""

    def to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        linear = hz / (200.0 / 3)
        return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1000.0) / 1000.0) / (math.log(6.4) / 27), linear)

    def to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.where(mel >= 15.0, 1000.0 * np.exp(math.log(6.4) / 27 * (mel - 15.0)), mel * (200.0 / 3))

    bins = np.linspace(0.0, RATE / 2, N_FFT // 2 + 1)
    edges = to_hz(np.linspace(to_mel(np.array(0.0)), to_mel(np.array(RATE / 2)), N_MELS + 2))
    rising = (bins[None, :] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    falling = (edges[2:, None] - bins[None, :]) / np.diff(edges)[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return np.ascontiguousarray(weights.T, dtype=np.float32)


_MEL: Final = _mel_filters()
_WINDOW: Final = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def mel_frames(audio: F32) -> F32:
    """Power mel spectrogram of ``audio`` (16 kHz), frames centred on every 10 ms with zero padding: (frames, 40)."""
    padded = np.pad(audio, N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    spectrum = np.fft.rfft(frames * _WINDOW, axis=1)
    power = np.square(spectrum.real) + np.square(spectrum.imag)
    return np.asarray(power @ _MEL, dtype=np.float32)


def partials(kept: F32) -> F32:
    """The partial utterances of ``kept`` (the output of `speech`), as a batch of mel frames: (n, 160, 40)."""
    starts = partial_starts(kept.size)
    end = (starts[-1] + PARTIAL_FRAMES) * HOP
    mel = mel_frames(np.pad(kept, (0, max(0, end - kept.size))))
    return np.stack([mel[start : start + PARTIAL_FRAMES] for start in starts])
