"""Who speaks when: a recording's speech judged window by window, so that another voice spliced into a
sample is found however much of the right voice is around it.

A voiceprint is the embedding of a whole recording, so it is mostly what most of the recording is. Here each
partial utterance (1.6 s of speech every 0.77 s) keeps its own embedding (`SpeechPrints`), and a *window* is
`WINDOW_PARTIALS` partials in a row: 3.1 s of speech. Each partial of a window is scored by its
cosine with a reference, and the window by the larger of its partials' mean and median: under a threshold only
when the mean is and two of its three partials are, so one partial alone (1.6 s of a cough, a laugh, a door)
never refuses a sample. A window under its threshold is not the reference's voice:

- `unlike`: against a print of the voice (a spoken consent's; a set's other samples'), under
  `REFERENCE_THRESHOLD`;
- `second_voice`: with no print to compare with, each window against the print of the rest of its own
  recording (the partials that share none of its speech), and against the main voice alone once the partials
  are shared out between two voices (`self_scores`), under `SELF_THRESHOLD`.

What is refused is named in the recording's own seconds (`Stretch`, from the start of its first partial's span
to the end of its last one's: `SpeechPrints.spans` puts back the pauses the VAD cut): against a reference, the
partials of the windows under the threshold, trimmed at both ends to those whose own cosine is under it;
with none, the partials nearer the other voice than the main one (`second_voice`). How the thresholds were set,
and what they refuse: docs/voiceprint.md (`python bench/voiceprint.py` prints the figures).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from backend.voiceprint.embedding import DIMENSIONS, SpeechPrints, Voiceprint

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: Partial utterances in a window: 3 cover 3.1 s of speech (1.6 s, and two steps of 0.77 s).
WINDOW_PARTIALS: Final = 3
#: A window's score against a print of the voice under which it is not that voice.
REFERENCE_THRESHOLD: Final = 0.35
#: A window's score against the print of the rest of its recording under which it is another voice.
SELF_THRESHOLD: Final = 0.37
#: The fewest partials the rest of a recording must hold to judge one of its windows: as many as the window.
MIN_REST: Final = WINDOW_PARTIALS


class Stretch(msgspec.Struct, frozen=True, rename="camel"):
    """Speech that is not the reference's voice: from `start_s` to `end_s` of the recording, and the lowest
    score of its windows."""

    start_s: float
    end_s: float
    score: float


def named(stretches: Sequence[Stretch]) -> str:
    """How a refusal names ``stretches``: "the speech from 4.2 s to 24.0 s is", "the speech from 0.5 s to 3.9 s
    and from 20.1 s to 24.0 s are" (the page reads the seconds back from these words)."""
    spans = " and ".join(f"from {s.start_s:.1f} s to {s.end_s:.1f} s" for s in stretches)
    return f"the speech {spans} {'is' if len(stretches) == 1 else 'are'}"


def unlike(prints: SpeechPrints, reference: Voiceprint, threshold: float = REFERENCE_THRESHOLD) -> list[Stretch]:
    """The stretches of ``prints``' speech whose windows are not ``reference``'s voice (`reference_scores`
    under ``threshold``), in order; [] when every window is, or when the recording holds fewer partials than a
    window (its whole voiceprint judges it then)."""
    cosines = np.asarray(prints.vectors @ reference.vector, dtype=np.float64)
    return _stretches(prints, _scores(_windows(cosines)), threshold, lambda _first, _last: cosines)


def reference_scores(prints: SpeechPrints, reference: Voiceprint) -> F64:
    """Each window's score against ``reference`` (the larger of the mean and the median of its partials'
    cosines with it); none when the recording holds fewer partials than a window."""
    return _scores(_windows(np.asarray(prints.vectors @ reference.vector, dtype=np.float64)))


def wholly_unlike(prints: SpeechPrints, reference: Voiceprint, threshold: float = REFERENCE_THRESHOLD) -> bool:
    """Whether no window of ``prints`` is ``reference``'s voice (and there is one at least): the whole of it is
    someone else, which its whole voiceprint's score says better than its seconds."""
    scores = reference_scores(prints, reference)
    return bool(scores.size) and bool(np.all(scores < threshold))


def second_voice(prints: SpeechPrints, threshold: float = SELF_THRESHOLD) -> list[Stretch]:
    """The stretches of ``prints``' speech that are another voice than the rest of the recording, in order;
    [] when every window is the voice of the rest (`self_scores` at or over ``threshold``), or the recording
    is too short to hold a window and a rest of `MIN_REST` partials. The runs of at least two partials of the
    other voice are named (and the lowest window's), with the lowest score of the windows they overlap."""
    scores, other, seed = _self_judged(prints.vectors)
    if other is None or not np.any(scores < threshold):
        return []
    return [
        Stretch(
            start_s=round(float(prints.spans[first, 0]), 2),
            end_s=round(float(prints.spans[last, 1]), 2),
            score=round(float(scores[max(0, first - WINDOW_PARTIALS + 1) : last + 1].min()), 4),
        )
        for first, last in _runs(other)
        if last > first or first <= seed <= last
    ]


def self_scores(prints: SpeechPrints) -> F64:
    """Each window's score against the rest of its recording; 1 for a window whose rest is under `MIN_REST`
    partials.

    Where another voice holds much of a recording, it is in the rest of every window too, and a window of it
    scores higher against that rest than against the main voice alone. So a window is scored twice, and keeps
    the lower: against the print of every partial that shares none of its speech; and against the main voice
    alone, once the partials are shared out between two voices: the lowest window of the first pass is taken
    for the other voice and the rest of the recording for the main one, then each partial goes to the voice
    whose print it is nearer, twice over (each print made again from the partials it then holds)."""
    return _self_judged(prints.vectors)[0]


def _self_judged(vectors: F32) -> tuple[F64, npt.NDArray[np.bool_] | None, int]:
    """`self_scores`, which partials are the other voice (None when no window could be judged), and the first
    pass's lowest window."""
    first, judged = _rest_scores(vectors, np.ones(len(vectors), dtype=bool))
    if not judged.any():
        return first, None, 0
    seed = int(np.argmin(np.where(judged, first, np.inf)))
    other = _other_voice(vectors, seed)
    second, _ = _rest_scores(vectors, ~other)
    return np.minimum(first, second), other, seed


def _rest_scores(vectors: F32, usable: npt.NDArray[np.bool_]) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Each window's score against the print of the ``usable`` partials that share none of its speech, and
    whether it had `MIN_REST` of them (a score of 1 where not)."""
    count = len(vectors)
    kept = np.where(usable[:, None], vectors, 0)
    sums = np.concatenate([np.zeros((1, DIMENSIONS)), np.cumsum(kept, axis=0, dtype=np.float64)])
    left = np.concatenate([[0], np.cumsum(usable)])
    windows = np.ones((max(0, count - WINDOW_PARTIALS + 1), WINDOW_PARTIALS))
    judged = np.zeros(windows.shape[0], dtype=bool)
    for start in range(windows.shape[0]):
        shared = _shared(start, start + WINDOW_PARTIALS - 1, count)
        rest = sums[count] - (sums[shared.stop] - sums[shared.start])
        norm = float(np.linalg.norm(rest))
        if left[count] - (left[shared.stop] - left[shared.start]) >= MIN_REST and norm > 0:
            windows[start] = vectors[start : start + WINDOW_PARTIALS] @ (rest / norm)
            judged[start] = True
    return _scores(windows), judged


#: Times the partials are shared out between the two voices, each voice's print made again in between.
_PASSES: Final = 2


def _other_voice(vectors: F32, seed: int) -> npt.NDArray[np.bool_]:
    """Which partials are the other voice: those of the window at ``seed`` to begin with, against the rest
    (but the seed's neighbours, which share its speech); then each partial to the nearer voice."""
    other = np.zeros(len(vectors), dtype=bool)
    other[seed : seed + WINDOW_PARTIALS] = True
    main = np.ones(len(vectors), dtype=bool)
    main[_shared(seed, seed + WINDOW_PARTIALS - 1, len(vectors))] = False
    for _ in range(_PASSES):
        nearer = vectors @ vectors[other].mean(axis=0) > vectors @ vectors[main].mean(axis=0)
        if nearer.all() or not nearer.any():
            break
        other, main = nearer, ~nearer
    return other


def _shared(first: int, last: int, count: int) -> slice:
    """The partials that share speech with ``first``-``last``: those and a neighbour either side (partials
    1.6 s long every 0.77 s overlap by 0.8 s)."""
    return slice(max(0, first - 1), min(count, last + 2))


def _windows(cosines: F64) -> F64:
    """Every `WINDOW_PARTIALS` cosines in a row: (windows, `WINDOW_PARTIALS`), none when there are fewer."""
    if cosines.size < WINDOW_PARTIALS:
        return np.ones((0, WINDOW_PARTIALS))
    return sliding_window_view(cosines, WINDOW_PARTIALS)


def _scores(windows: F64) -> F64:
    """Each window's score: the larger of its cosines' mean and median, under a threshold only when the mean
    is and so are two of its three partials."""
    return np.asarray(np.maximum(windows.mean(axis=1), np.median(windows, axis=1)), dtype=np.float64)


def _stretches(
    prints: SpeechPrints, scores: F64, threshold: float, cosines_for: Callable[[int, int], F64]
) -> list[Stretch]:
    """The partials of the windows scoring under ``threshold`` (``scores``, one a window start), as runs;
    each run trimmed at both ends to the partials whose own cosine is under it (against
    ``cosines_for(first, last)``), so that a window's partials of the right voice are not named with it."""
    flagged = np.zeros(len(prints), dtype=bool)
    for start in np.flatnonzero(scores < threshold):
        flagged[start : start + WINDOW_PARTIALS] = True
    found = []
    for first, last in _runs(flagged):
        below = first + np.flatnonzero(cosines_for(first, last)[first : last + 1] < threshold)
        low, high = (int(below[0]), int(below[-1])) if below.size else (first, last)
        found.append(
            Stretch(
                start_s=round(float(prints.spans[low, 0]), 2),
                end_s=round(float(prints.spans[high, 1]), 2),
                score=round(float(scores[first : last - WINDOW_PARTIALS + 2].min()), 4),
            )
        )
    return found


def _runs(flags: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """The first and last index of each run of True in ``flags``."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), (np.flatnonzero(edges == -1) - 1).tolist(), strict=True))
