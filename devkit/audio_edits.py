"""The edits of pitch and time an evader reaches for first, made by the ffmpeg executable as sox makes them:
`pitch` (the pitch moves, the length stays), `speed` (pitch and tempo move together: a resampling) and `tempo`
(the length changes, the pitch stays); and a room's reverberation. For the watermark's tests and benchmark."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.signal import fftconvolve

from devkit.audio_corpus import encode

F32 = npt.NDArray[np.float32]


def filtered(signal: npt.NDArray[np.floating], rate: int, chain: str) -> bytes:
    """``signal`` (mono float) through ffmpeg's audio filter ``chain``, as 16-bit WAV at ``rate``."""
    samples = np.asarray(signal, dtype=np.float32)
    return encode(samples, rate, "wav", "pcm_s16le", options={"af": chain, "ar": str(rate)})


def pitch_chain(rate: int, cents: float, tempo: float = 1.0) -> str:
    """sox's `pitch` ``cents`` (the tempo changed by WSOLA, then the audio resampled back to its length: the pitch
    moves, the length stays), then its `tempo` ``tempo`` (the length changes by 1 / ``tempo``, the pitch stays)."""
    factor = 2 ** (cents / 1200)
    return f"asetrate={rate * factor:.0f},aresample={rate},atempo={tempo / factor:.6f}"


def speed_chain(rate: int, factor: float) -> str:
    """sox's `speed` ``factor``: the audio resampled, so its pitch and tempo move together."""
    return f"asetrate={rate * factor:.0f},aresample={rate}"


def pitch_shifted(signal: npt.NDArray[np.floating], rate: int, cents: float, tempo: float = 1.0) -> bytes:
    """``signal`` as sox's `pitch` ``cents`` (and `tempo` ``tempo``) leaves it, as a WAV at ``rate``."""
    return filtered(signal, rate, pitch_chain(rate, cents, tempo))


def sped(signal: npt.NDArray[np.floating], rate: int, factor: float) -> bytes:
    """``signal`` as sox's `speed` ``factor`` leaves it, as a WAV at ``rate``."""
    return filtered(signal, rate, speed_chain(rate, factor))


def reverberant(samples: npt.NDArray[np.floating], rate: int) -> npt.NDArray[np.float64]:
    """``samples`` in a room: convolved with a synthetic impulse response (direct sound, then noise decaying by
    60 dB in 0.4 s), the level kept."""
    length = round(0.4 * rate)
    tail = np.random.default_rng(7).standard_normal(length) * 10 ** (-3 * np.arange(length) / length) * 0.3
    tail[0] = 1.0
    wet = fftconvolve(samples, tail)[: samples.size]
    level = math.sqrt(np.mean(np.square(samples)) / max(np.mean(np.square(wet)), 1e-20))
    return np.asarray(np.clip(wet * level, -1, 1), dtype=np.float64)
