"""What GE2E (devkit/ge2e) reads: 16 kHz speech, its long silences cut, as 40-band power mel frames in partial
utterances of 1.6 s, the way the encoder was trained (resemblyzer 0.1.4's `audio.py` and `voice_encoder.py`).

The speech is cut by `backend.voiceprint.features.speech`, whose VAD keeps GE2E's own preprocessing (-30 dBFS, mode
3, a moving average over 8 windows, short pauses kept): a print is what the published weights were trained and
calibrated on.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from backend.voiceprint.features import HOP, N_FFT, PARTIAL_FRAMES, PARTIAL_STEP, RATE, speech

__all__ = ["MIN_SPEECH_SAMPLES", "mel_frames", "partials", "speech"]

F32 = npt.NDArray[np.float32]

N_MELS: Final = 40
#: The last partial counts when audio covers this share of it (the rest is zeros).
MIN_COVERAGE: Final = 0.75
#: Speech (after the VAD) for one partial utterance: 1.2 s.
MIN_SPEECH_SAMPLES: Final = math.ceil(MIN_COVERAGE * PARTIAL_FRAMES * HOP)


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
