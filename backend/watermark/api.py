"""Mark audio and find the mark: what the rest of voicegate calls."""

from __future__ import annotations

import itertools
import math
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from backend.watermark import perth
from backend.watermark.network import shared_network

F64 = npt.NDArray[np.float64]

#: The score at the audio's own pitch (the library's reading of the whole) from which audio is taken to carry the
#: mark without looking further. The library rounds at 0.5, where one unmarked LibriSpeech clip scores as marked (of
#: the 60 shared clips 1688-142285-0004, at 0.511); that speaker's clips read 0.60-0.68 after rubberband, librosa or
#: sox shifted their pitch (at the pitch they were edited to), so from 0.6, as before, 10 of its 60 edited clips
#: were taken for marked (from 0.7, one of 1,044 edits on the tuned speakers: that clip after sox `speed 1.05`, at
#: 0.73). Under it the loud excerpts decide, as at a warp (`OWN_PEAK_FLOOR`): marked speech under white noise at
#: 20 dB reads 0.5-0.95 as a whole and 0.88-1.0 there. What it costs: Praat's PSOLA leaves marked speech at
#: 0.59-0.72 at its own pitch, and its loud excerpts (what PSOLA moves) read weakly.
THRESHOLD: Final = 0.7


#: How much stronger than the library's the mark is made: its residual, as the library computes it, times this.
#: At the library's own strength a marked LibriSpeech clip is found after white noise at 20 dB SNR 83 % of the time,
#: at 1.5 95-97 %, for a mark 13 dB under the speech, all of it under 2 kHz, and a small loss of PESQ-WB
#: (docs/consent.md#the-watermark has the figures). The detector is the library's: resemble-perth finds these marks
#: as it finds its own.
STRENGTH: Final = 1.5
#: How much stronger than the library's the mark is made in unvoiced frames (`perth.UNVOICED`: fricatives,
#: breaths, the noise of a pause). Praat's PSOLA moves each voiced frame's harmonics to the new pitch, which blurs
#: the mark there, and copies the unvoiced stretches as they were, so those carry it through (`UNVOICED_THRESHOLD`);
#: at `STRENGTH` they read too weakly to tell from a phase vocoder's unmarked output. A change of a noise's
#: magnitudes hides in the noise: the mark stays 12.9 dB under the speech (13.2 at `STRENGTH` throughout, 10.9 at
#: 2.0 throughout); PESQ-WB loses 0.10 on natural speech and 0.19 on the `local` engine's, which has more unvoiced
#: frames (0.21 and 0.23 at 2.0 throughout; docs/consent.md#the-watermark).
UNVOICED_STRENGTH: Final = 2.5

#: The pitches, in cents from the audio's own, at which the detector looks when the mark is not found at the
#: audio's own: a pitch shift or a change of speed moves the mark's bins with the speech, and the decoder finds it
#: only within about 30 cents of where it was made (a sox `pitch 100` hides it from a detector that reads the audio
#: as it is). Every 60 cents out to 180, the best then refined `REFINE_CENTS` toward its better neighbour: pitch
#: shifts of up to two semitones and speeds of 0.89-1.13, by sox, rubberband, Praat or a phase vocoder.
WARPS: Final = (-60, 60, -120, 120, -180, 180)
#: How far from the warp that looks best, toward its better neighbour, the search looks again, to land within 15
#: cents of the mark; and how far to a side of the warp it reads a real mark must still look from `SPAN_FLOOR`.
REFINE_CENTS: Final = 30
#: The stretches the search reads at each warp: the loudest `EXCERPT_S` of each of `EXCERPTS` equal parts of the
#: audio, where the mark is strongest and a pause cannot hide it (the middle half-second alone, as before, fell on
#: a pause or a tool's splice in 19 of 34 misses after the real tools); short enough that the search costs about
#: half of reading a 10 s clip at its own pitch.
EXCERPTS: Final = 3
EXCERPT_S: Final = 0.5
#: The normal-speed branch's mark output, averaged over the excerpts, from which a warp is read by all three
#: branches: marked speech read back at its warp gives 5.7-6.0 after every tool but a vocoder, unmarked speech
#: gave 2.9 at the most at any warp.
SEARCH_FLOOR: Final = 3.5
#: The score at the audio's own pitch from which the search looks at the loud excerpts there too: marked speech
#: under white noise at 20 dB read 0.5 at the least as a whole, shifted speech reads about nothing there.
OWN_LOOK_FROM: Final = 0.4
#: What the best refined look must reach for its warp to be read by all three branches: marked speech read back at
#: its warp looked 5.3-6.0 after every tool but a vocoder; unmarked speech in a reverberant room 4.7 at one warp,
#: and after librosa's phase vocoder 4.3.
PEAK_FLOOR: Final = 5.0
#: `PEAK_FLOOR` at the audio's own pitch, where no room or vocoder raised unmarked speech's look over 3.2, and marked
#: speech under white noise at 20 dB looked 4.3-6.0.
OWN_PEAK_FLOOR: Final = 4.0
#: How many warps that look from `SEARCH_FLOOR` are refined and read, the best first: a mark shifted by c also
#: looks high about 240 cents from c.
CANDIDATES: Final = 2
#: The score (three branches over the excerpts) from which audio read at a warp is taken to carry the mark: higher
#: than `THRESHOLD`, since the best of many warps is read. Marked speech read back at its warp scores 0.97-1.0;
#: unmarked natural speech, 0.71 at the most at any warp.
WARP_THRESHOLD: Final = 0.85
#: What the better of the two looks `REFINE_CENTS` either side of the warp read must reach as well: a real mark reads
#: over 60 cents or more around its pitch, and the warp read lands within 15 cents of it, so the side toward it
#: looked 5.0-5.9 after every tool; natural speech in a reverberant room (a room's decaying tail) reads as marked at
#: about -60 cents over a span of 45 cents alone, 3.4-4.8 on its better side.
SPAN_FLOOR: Final = 4.9


#: A fainter mark (shifted, then through MP3 at 32 kbit/s: its looks 4.1-5.7) is read whole as well, at the better
#: side: found when the excerpts' look reaches `FAINT_PEAK_FLOOR`, the side's `FAINT_SPAN_FLOOR`, the excerpts' score
#: `WARP_THRESHOLD`, and the whole audio read 30 cents to that side `FAINT_SIDE_THRESHOLD`. The whole reads a real
#: mark there at 0.95-1.0, the reverberant room's tail at 0.56-0.80.
FAINT_PEAK_FLOOR: Final = 4.5
FAINT_SPAN_FLOOR: Final = 3.0
FAINT_SIDE_THRESHOLD: Final = 0.95


#: The unvoiced frames' route, at the audio's own pitch, for what Praat's PSOLA leaves: marked speech after it read
#: 0.63-0.98 as a whole on the tuned speakers, under `THRESHOLD` in 4 of 60 edits, and those four read 0.86-0.99 in
#: their unvoiced frames alone; unmarked speech through every tool read there 0.84 at the most where the whole read
#: from 0.55, over `UNVOICED_FRAMES` frames or more 0.83. Audio whose whole reads from `UNVOICED_FAINT_BELOW`
#: carries the mark when its unvoiced frames, `UNVOICED_FRAMES` at least (0.3 s), read `UNVOICED_THRESHOLD`.
#: On 110 other speakers, whose readings set the next two constants, PSOLA left some marked speech fainter as a
#: whole, 0.37-0.55, its unvoiced frames at 0.92-0.98, where unmarked speech through every tool read 0.63 at the
#: most; on 149 more, held out, 0.62, and 0.86 through edits aimed at this band (reverb, pitch, highpass). From
#: `UNVOICED_FROM` to `UNVOICED_FAINT_BELOW` the unvoiced frames must read `UNVOICED_FAINT_THRESHOLD`.
UNVOICED_FROM: Final = 0.35
UNVOICED_FAINT_BELOW: Final = 0.55
UNVOICED_THRESHOLD: Final = 0.85
UNVOICED_FAINT_THRESHOLD: Final = 0.9
UNVOICED_FRAMES: Final = 30


class Detection(msgspec.Struct, frozen=True, kw_only=True):
    """Whether audio carries Perth-Net's mark, its decoder's score in [0, 1] and the pitch (cents from the audio's
    own) at which it was read: the whole at its own pitch (present from `THRESHOLD`), its unvoiced frames there
    (from `UNVOICED_THRESHOLD`), or its loud excerpts at a warp or at its own pitch (from `WARP_THRESHOLD`)."""

    present: bool
    score: float
    cents: int = 0


#: The most channels a decoded sample has (`backend.audio.decode` folds more to stereo).
_CHANNELS: Final = 2


def _mono(samples: npt.NDArray[np.floating], rate: int) -> npt.NDArray[np.float32]:
    """``samples`` (mono ``(n,)`` or channels first ``(c, n)``, at most two channels, float) as mono float32;
    ValueError otherwise."""
    array = np.asarray(samples)
    if array.ndim not in {1, 2} or array.size == 0 or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"samples must be a non-empty float array of shape (n,) or (c, n), not {array.shape}")
    if array.ndim == 2 and array.shape[0] > _CHANNELS:
        # (n, 2), a sound file library's layout, would otherwise average each frame's samples into n "channels".
        raise ValueError(f"samples must be channels first, (c, n) with c at most {_CHANNELS}, not {array.shape}")
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
    """What `mark` adds to ``samples``, at their rate: the library's residual times `STRENGTH`, in unvoiced frames
    `UNVOICED_STRENGTH`; as long as them, or up to a hop (10 ms) shorter (nothing is added past the last frame's
    centre)."""
    array = np.asarray(samples)
    if array.ndim != 1:
        raise ValueError(f"only mono audio is marked, not shape {array.shape}")
    encoder = shared_network().encoder
    return perth.added(encoder, _mono(array, rate), rate, UNVOICED_STRENGTH / STRENGTH) * STRENGTH


def detect(samples: npt.NDArray[np.floating], rate: int) -> Detection:
    """Whether ``samples`` (float, mono ``(n,)`` or channels first ``(c, n)`` with c at most 2, averaged to mono,
    at any rate) carry the mark, at their own pitch or shifted by up to two semitones and more (a pitch shift, a
    change of speed). Digital silence scores 0: there is nothing to read. Reads the weights on the first call.

    The whole is read at its own pitch first (the score the library gives), which finds the mark from `THRESHOLD`;
    from `UNVOICED_FROM`, its unvoiced frames alone find it from `UNVOICED_THRESHOLD` (`UNVOICED_FAINT_THRESHOLD`
    where the whole reads under `UNVOICED_FAINT_BELOW`). Otherwise the search looks
    at `EXCERPTS` loud excerpts with the normal-speed branch at each of `WARPS` (and at the audio's own pitch from
    `OWN_LOOK_FROM`), refines the `CANDIDATES` best that look from `SEARCH_FLOOR` by `REFINE_CENTS` toward the
    better neighbour and, where the best refined look reaches `PEAK_FLOOR` (`OWN_PEAK_FLOOR` at the audio's own
    pitch), reads its excerpts with all three branches: the mark is found there when that score reaches
    `WARP_THRESHOLD` and a look `REFINE_CENTS` to one side reaches `SPAN_FLOOR`; a fainter look (from
    `FAINT_PEAK_FLOOR`, the side's from `FAINT_SPAN_FLOOR`) needs the whole read at that side too
    (`FAINT_SIDE_THRESHOLD`). Not found, the answer is the score
    at the audio's own pitch."""
    decoders = shared_network().decoders
    at_rate = perth.to_rate(_mono(samples, rate), rate, perth.RATE)
    reading = perth.Reading(decoders, at_rate)
    found = _detection(reading.score()[0], 0, THRESHOLD)
    if found.present:
        return found
    if found.score >= UNVOICED_FROM:
        # The fainter the whole, the surer its unvoiced frames must be.
        needed = UNVOICED_THRESHOLD if found.score >= UNVOICED_FAINT_BELOW else UNVOICED_FAINT_THRESHOLD
        unvoiced, frames = reading.score(perth.voicing(reading.padded) < perth.UNVOICED)
        if frames >= UNVOICED_FRAMES and unvoiced >= needed:
            return _detection(unvoiced, 0, needed)
    parts = excerpts(at_rate)
    # The normal branch's (attention, mark) at each warp looked at, kept for the reading by all three.
    normal: dict[int, tuple[float, float] | None] = {}

    def look(cents: int) -> float:
        if cents not in normal:
            read = perth.means(((decoders[1], perth.SCALES[1]),), [perth.warped(part, cents) for part in parts])
            normal[cents] = None if read is None else (float(read[0][0]), float(read[1][0]))
        outputs = normal[cents]
        return -math.inf if outputs is None else outputs[1]

    def seen(cents: int) -> float:
        """A look already taken, without taking it."""
        outputs = normal.get(cents)
        return -math.inf if outputs is None else outputs[1]

    warps = (0, *WARPS) if found.score >= OWN_LOOK_FROM else WARPS
    ranked = sorted((warp for warp in warps if look(warp) >= SEARCH_FLOOR), key=look, reverse=True)
    for coarse in ranked[:CANDIDATES]:
        # Refined toward the neighbour that looks better: the mark lies between the two.
        toward = REFINE_CENTS if seen(coarse + 2 * REFINE_CENTS) >= seen(coarse - 2 * REFINE_CENTS) else -REFINE_CENTS
        best = max((coarse, coarse + toward), key=look)
        peak = OWN_PEAK_FLOOR if best == 0 else PEAK_FLOOR
        if look(best) < min(peak, FAINT_PEAK_FLOOR):
            continue
        side = max((best - REFINE_CENTS, best + REFINE_CENTS), key=look)
        # The room's tail reads at a warp, never at the audio's own pitch: there the fainter side is enough.
        clear = look(best) >= peak and look(side) >= (FAINT_SPAN_FLOOR if best == 0 else SPAN_FLOOR)
        if not clear and look(side) < FAINT_SPAN_FLOOR:
            continue
        warped = _detection(_three_branches(decoders, parts, best, normal[best]), best, WARP_THRESHOLD)
        if warped.present and (
            clear or perth.score(decoders, perth.warped(at_rate, side), perth.RATE) >= FAINT_SIDE_THRESHOLD
        ):
            return warped
    return found


def _three_branches(
    decoders: tuple[perth.Stack, perth.Stack, perth.Stack],
    parts: list[npt.NDArray[np.float32]],
    cents: int,
    normal: tuple[float, float] | None,
) -> float:
    """The score of ``parts`` warped by ``cents``: the slow and fast branches read now, the normal branch's
    outputs as its look found them (NaN when every frame is quiet)."""
    warped = [perth.warped(part, cents) for part in parts]
    read = perth.means(((decoders[0], perth.SCALES[0]), (decoders[2], perth.SCALES[2])), warped)
    if read is None or normal is None:
        return math.nan
    attentions, marks = read
    return perth.combined(
        np.array([attentions[0], normal[0], attentions[1]]), np.array([marks[0], normal[1], marks[1]])
    )


def excerpts(at_rate: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
    """The stretches of ``at_rate`` (mono float32 at 32 kHz) the warp search reads: the loudest `EXCERPT_S` (by
    energy, in steps of 50 ms) of each of `EXCERPTS` equal parts; the whole when it is no longer than they are."""
    size = round(EXCERPT_S * perth.RATE)
    if at_rate.size <= EXCERPTS * size:
        return [at_rate]
    step = perth.RATE // 20
    squared = np.square(at_rate, dtype=np.float64)
    parts = []
    for start, stop in itertools.pairwise(np.linspace(0, at_rate.size, EXCERPTS + 1).astype(int)):
        energy = np.cumsum(np.concatenate([[0.0], squared[start:stop]]))
        starts = np.arange(0, stop - start - size + 1, step)
        loudest = int(starts[np.argmax(energy[starts + size] - energy[starts])])
        parts.append(at_rate[start + loudest : start + loudest + size])
    return parts


def _detection(score: float, cents: int, threshold: float) -> Detection:
    """A decoder score (NaN for digital silence: 0) clipped to [0, 1], read at ``cents``, present from
    ``threshold``."""
    clipped = 0.0 if math.isnan(score) else min(1.0, max(0.0, score))
    return Detection(present=clipped >= threshold, score=round(clipped, 6), cents=cents)
