"""Mark audio and find the mark: what the rest of voicegate calls."""

from __future__ import annotations

import math
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from backend.watermark import perth
from backend.watermark.network import shared_network

F64 = npt.NDArray[np.float64]

#: The score from which audio is taken to carry the mark. The library rounds at 0.5, where one unmarked
#: LibriSpeech clip scores as marked (of the 60 shared clips 1688-142285-0004, at 0.511); at 0.6 none does, and
#: every marked clip still scores above it after MP3, Opus, AAC, resampling and the telephone band
#: (docs/consent.md has the figures).
THRESHOLD: Final = 0.6


#: How much stronger than the library's the mark is made: its residual, as the library computes it, times this.
#: At the library's own strength a marked LibriSpeech clip is found after white noise at 20 dB SNR 83 % of the time,
#: at 1.5 95-97 %, for a mark 13 dB under the speech, all of it under 2 kHz, and a small loss of PESQ-WB
#: (docs/consent.md#the-watermark has the figures). The detector is the library's: resemble-perth finds these marks
#: as it finds its own.
STRENGTH: Final = 1.5


class Detection(msgspec.Struct, frozen=True, kw_only=True):
    """Whether audio carries Perth-Net's mark: its decoder's score in [0, 1] and whether it reaches `THRESHOLD`."""

    present: bool
    score: float


def _mono(samples: npt.NDArray[np.floating], rate: int) -> npt.NDArray[np.float32]:
    """``samples`` (mono ``(n,)`` or channels first ``(c, n)``, float) as mono float32; ValueError otherwise."""
    array = np.asarray(samples)
    if array.ndim not in {1, 2} or array.size == 0 or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"samples must be a non-empty float array of shape (n,) or (c, n), not {array.shape}")
    if not isinstance(rate, int) or rate <= 0:
        raise ValueError(f"rate must be a positive number of samples per second, not {rate!r}")
    if not np.isfinite(array).all():
        raise ValueError("samples must be finite")
    mono = array if array.ndim == 1 else array.mean(axis=0)
    return np.asarray(mono, dtype=np.float32)


def mark(samples: npt.NDArray[np.floating], rate: int) -> F64:
    """``samples`` (mono float in [-1, 1] at any rate) with the mark added: the same length and rate, float64.

    Digital silence, or audio shorter than a frame, comes back unchanged but for float32 rounding: there is
    nothing in it to hide a mark under. Reads the weights on the first call (`WatermarkUnavailable` without
    them); ValueError on samples that are not mono float and finite, or a rate that is not a positive int.
    """
    array = np.asarray(samples)
    change = added(array, rate)
    marked = array.astype(np.float64)
    marked[: change.size] += change
    return marked


def added(samples: npt.NDArray[np.floating], rate: int) -> F64:
    """What `mark` adds to ``samples``, at their rate: the library's residual times `STRENGTH`; as long as them, or
    up to a hop (10 ms) shorter (nothing is added past the last frame's centre)."""
    array = np.asarray(samples)
    if array.ndim != 1:
        raise ValueError(f"only mono audio is marked, not shape {array.shape}")
    return perth.added(shared_network().encoder, _mono(array, rate), rate) * STRENGTH


def detect(samples: npt.NDArray[np.floating], rate: int) -> Detection:
    """Whether ``samples`` (float, mono ``(n,)`` or channels first ``(c, n)``, averaged to mono, at any rate)
    carry the mark. Digital silence scores 0: there is nothing to read. Reads the weights on the first call."""
    score = perth.score(shared_network().decoders, _mono(samples, rate), rate)
    clipped = 0.0 if math.isnan(score) else min(1.0, max(0.0, score))
    return Detection(present=clipped >= THRESHOLD, score=round(clipped, 6))
