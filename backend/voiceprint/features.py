"""What the speaker encoder reads: 16 kHz speech as SpeechBrain's `Fbank` and sentence-level `InputNormalization`
make it for `spkrec-ecapa-voxceleb` (80 log mel filterbanks of a 25 ms Hamming window every 10 ms, 0-8 kHz, in dB
floored at 1e-10 and clipped 80 dB under the utterance's loudest value, less their mean over the utterance), and
where the speech is: WebRTC VAD decides which seconds hold speech (`kept_speech`): whether a recording holds speech
enough for a print (1.2 s), and its partial utterances of 1.6 s of speech (long pauses cut), which `windows`
judges one by one. A recording's own print reads all of it, silences included, as SpeechBrain's model does.

The VAD here is not `backend.audio.measure`'s: that one judges whether a sample holds speech and how much; this one
keeps the settings voiceprints were made with before (mode 3, a moving average over 8 windows, pauses of up to
180 ms kept), so that "too little speech" and the seconds a window names mean what they meant.
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
N_MELS: Final = 80
#: Filterbank energies are floored here before the log, and clipped to this many dB under an utterance's loudest.
AMIN: Final = 1e-10
TOP_DB: Final = 80.0
#: A partial utterance is this many filterbank frames (1.6 s); they start every ``PARTIAL_STEP`` frames (1.3 a second).
PARTIAL_FRAMES: Final = 160
PARTIAL_STEP: Final = round(RATE / 1.3 / HOP)
#: Speech (after the VAD) for a print: 1.2 s, three quarters of a partial.
MIN_SPEECH_SAMPLES: Final = math.ceil(0.75 * PARTIAL_FRAMES * HOP)


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


def frames(length: int) -> int:
    """Filterbank frames of ``length`` samples: one centred on every 10 ms, the first on the first sample."""
    return 1 + length // HOP


def partial_starts(length: int) -> list[int]:
    """The first filterbank frame of each partial utterance of ``length`` samples: every ``PARTIAL_STEP``
    frames, and the last moved back to end where the speech does, so that every one is ``PARTIAL_FRAMES``
    long; one, of all the frames, when there are fewer."""
    count = frames(length)
    starts = list(range(0, max(1, count - PARTIAL_FRAMES + 1), PARTIAL_STEP))
    if starts[-1] + PARTIAL_FRAMES < count:
        starts.append(count - PARTIAL_FRAMES)
    return starts


def _mel_filters() -> npt.NDArray[np.float64]:
    """SpeechBrain's triangular filters on the HTK mel scale, 0-8 kHz: each centred on its mel point, both
    its sides as wide as the gap below it (as `speechbrain.processing.features.Filterbank` draws them)."""
    top = 2595 * math.log10(1 + (RATE / 2) / 700)
    hz = 700 * (10 ** (np.linspace(0.0, top, N_MELS + 2) / 2595) - 1)
    centres, widths = hz[1:-1], np.diff(hz)[:-1]
    slope = (np.linspace(0, RATE // 2, N_FFT // 2 + 1)[:, None] - centres[None, :]) / widths[None, :]
    return np.maximum(0.0, np.minimum(1.0 + slope, 1.0 - slope))


_MEL: Final = _mel_filters()
_WINDOW: Final = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hamming, as torch's


def fbanks(audio: F32) -> npt.NDArray[np.float64]:
    """Log mel filterbanks of ``audio`` (16 kHz): (frames, 80) in dB, a frame centred on every 10 ms (zero
    padded), power spectrum of a 25 ms Hamming window, floored at 1e-10; not yet clipped or normalised
    (`normalised`)."""
    padded = np.pad(audio.astype(np.float64), N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    spectrum = np.fft.rfft(frames * _WINDOW, axis=1)
    power = np.square(spectrum.real) + np.square(spectrum.imag)
    return 10 * np.log10(np.maximum(power @ _MEL, AMIN))


def normalised(banks: npt.NDArray[np.float64]) -> F32:
    """Filterbanks of one utterance as the encoder reads them: clipped to ``TOP_DB`` under their loudest value,
    then their mean over frames taken off (SpeechBrain's sentence-level InputNormalization, no variance)."""
    clipped = np.maximum(banks, banks.max() - TOP_DB)
    return np.asarray(clipped - clipped.mean(axis=0), dtype=np.float32)


def partials(banks: npt.NDArray[np.float64], starts: list[int]) -> F32:
    """The partial utterances starting at frames ``starts`` of an utterance's filterbanks ``banks`` (`fbanks`),
    each normalised on its own, as a batch: (n, PARTIAL_FRAMES, 80), or (1, frames, 80) of a shorter one."""
    return np.stack([normalised(banks[start : start + PARTIAL_FRAMES]) for start in starts])
