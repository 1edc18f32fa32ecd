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

#: The pitches, in cents from the audio's own, at which the detector looks again when the mark is not found at
#: the audio's own: a pitch shift or a change of speed moves the mark's bins with the speech, and the decoder
#: finds it only within about 30 cents of where it was made (a sox `pitch 100` hides it from a detector that
#: reads the audio as it is). Steps of 60 cents, each read within 30 either side, cover 210 cents either way:
#: pitch shifts of up to two semitones and speeds of 0.89-1.13.
WARPS: Final = (-60, 60, -120, 120, -180, 180)
#: The seconds, from the middle of the audio, that the search reads at each of `WARPS`: a short excerpt and one
#: decoder branch keep the search's cost to under half of reading 6 s at its own pitch.
EXCERPT_S: Final = 0.5
#: The normal-speed branch's mark output, averaged over the excerpt, from which a warp is read again in full
#: (three branches, the whole audio) to decide: marked speech gives about 6 at its own pitch, unmarked speech
#: about 2 at the most at any warp; but where the excerpt falls on a pause (espeak-ng's speech), marked speech
#: slowed or shifted reads 3.3-3.5 at its warp, which a floor of 2.5 keeps (docs/consent.md#the-watermark has
#: the figures).
SEARCH_FLOOR: Final = 2.5
#: How many of the warps that read from `SEARCH_FLOOR` are read in full, the highest first: on a pause the right
#: warp is not always among the two highest.
READ_IN_FULL: Final = 3
#: The score from which audio read at a warp is taken to carry the mark: higher than `THRESHOLD`, since the
#: best of several warps is read. Marked speech read back at its warp scores 0.93-1.0; unmarked natural speech
#: reached 0.72 at one warp (a man's clip, +120 cents), and 0.71 at the most on the clips the search was tuned on.
WARP_THRESHOLD: Final = 0.85
#: How far either side of a warp that reaches `WARP_THRESHOLD` the detector reads again before it answers, and
#: the score one of the two must reach. The decoder finds a real mark over 60 cents or more around its pitch, so
#: 30 cents above or below the warp it still reads 1.0; reverberant natural speech (a room's decaying tail) can
#: read 0.85-1.0 at one warp over a span of about 30 cents alone, and under 0.9 on both sides of it.
SPAN_CENTS: Final = 30
SPAN_THRESHOLD: Final = 0.95


class Detection(msgspec.Struct, frozen=True, kw_only=True):
    """Whether audio carries Perth-Net's mark: its decoder's score in [0, 1] and whether it reaches `THRESHOLD`,
    and the pitch (cents from the audio's own, one of `WARPS`, or 0) at which it was read."""

    present: bool
    score: float
    cents: int = 0


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
    carry the mark, at their own pitch or shifted by up to two semitones (a pitch shift, a change of speed).
    Digital silence scores 0: there is nothing to read. Reads the weights on the first call.

    The whole is read at its own pitch first (the score the library gives); when that misses, the middle
    `EXCERPT_S` is read by one branch at each of `WARPS`, and the `READ_IN_FULL` warps that read highest, from
    `SEARCH_FLOOR`, are read in full: the first whose score reaches `WARP_THRESHOLD`, and `SPAN_THRESHOLD`
    `SPAN_CENTS` to one side of it, finds the mark."""
    decoders = shared_network().decoders
    at_rate = perth.to_rate(_mono(samples, rate), rate, perth.RATE)
    found = _detection(perth.score(decoders, at_rate, perth.RATE), 0)
    if found.present:
        return found
    middle = max(0, (at_rate.size - round(EXCERPT_S * perth.RATE)) // 2)
    excerpt = at_rate[middle : middle + round(EXCERPT_S * perth.RATE)]
    looks = {cents: perth.mark_mean(decoders[1], perth.warped(excerpt, cents)) for cents in WARPS}
    # A mark shifted by c also reads high about 240 cents from c (on the normal branch alone): the highest
    # warps from the floor are read in full, the higher first.
    ranked = sorted((warp for warp in WARPS if looks[warp] >= SEARCH_FLOOR), key=looks.__getitem__, reverse=True)
    for cents in ranked[:READ_IN_FULL]:
        warped = _detection(perth.score(decoders, perth.warped(at_rate, cents), perth.RATE), cents)
        if warped.present and _spans(decoders, at_rate, cents):
            return warped
    return found


def _spans(
    decoders: tuple[perth.Stack, perth.Stack, perth.Stack], at_rate: npt.NDArray[np.float32], cents: int
) -> bool:
    """Whether the audio (mono float32 at 32 kHz) reads from `SPAN_THRESHOLD` `SPAN_CENTS` above or below
    ``cents``, as a mark found there does: the side above first (where a mark found at a warp most often still
    reads whole), the side below only when it misses."""
    return any(
        perth.score(decoders, perth.warped(at_rate, cents + side), perth.RATE) >= SPAN_THRESHOLD
        for side in (SPAN_CENTS, -SPAN_CENTS)
    )


def _detection(score: float, cents: int) -> Detection:
    """A decoder score (NaN for digital silence: 0) clipped to [0, 1], read at ``cents``: present from
    `THRESHOLD` at the audio's own pitch, from `WARP_THRESHOLD` at a warp."""
    clipped = 0.0 if math.isnan(score) else min(1.0, max(0.0, score))
    return Detection(present=clipped >= (WARP_THRESHOLD if cents else THRESHOLD), score=round(clipped, 6), cents=cents)
