"""Benchmark: the voice ownership registry (backend/ownership): its thresholds on real speech, what they do to new
voices and copies in a registry of up to a million prints, and the search over a million prints in PostgreSQL with
pgvector's HNSW index beside an exact scan of the same table in the same run.

    python bench/ownership.py --speech CORPUS [--prints 1000000] [--queries 1000] [--exact-queries 200]
                              [--ef-search 40,100,200] [--keep DIR] [--model realistic|isotropic]
                              [--skip-threshold] [--skip-search]

Thresholds, on the speech of bench/voiceprint.py (CORPUS, put together by bench/voiceprint_corpus.py: LibriSpeech
and VCTK, CC BY 4.0). Each speaker with ten recordings is an account whose registry holds the prints of a consent
reading (8-20 s) and of two samples (5-30 s), made of one half of their recordings (the first five, by name);
another account then uploads samples (5, 10, 15, 20 or 30 s, cut from the other half: different recordings) of
each such speaker, and every speaker with one recording uploads it. An upload's score against an account is the
best of that account's prints: of the same speaker, the case to hold; of another speaker, the case never to hold.
The tuning speakers' trials (10 accounts; 10 + 193 uploaders) set the thresholds, the held-out speakers' trials
(4 accounts; 4 + 58 uploaders), which had no say in them, judge them:

* `OWNERSHIP_THRESHOLD`, a match: the middle of the gap between the highest different-speaker score and the lowest
  same-speaker one when they do not overlap (else the equal-error point), rounded down to two decimals. Targets:
  the same speaker held in at least 95 % of the held-out uploads, no different-speaker upload held in either group.
  The same uploads are judged again by the second best print of each account (a rule that would need two of an
  account's prints to match).
* `SAME_VOICE_THRESHOLD`, near-identical (what no reading settles): the same speaker's uploads' 5 % quantile,
  rounded down. Targets: the same speaker's held-out uploads at or above it in at least 95 %, no different-speaker
  upload or pair of single recordings.

Readings (held-out speakers): an asked sample's reading is matched to the sample one to one at `THRESHOLD`
(`backend.records.ownership.answer`). A reading (3, 5 or 8 s, as a consent phrase is read) against a sample
(5-30 s): a speaker's own (from other recordings than the sample when they have several; from another stretch of
their one recording, 13 s or more, otherwise) and every other speaker's. Targets: the same speaker's reading passes
in at least 95 %; another's share is printed (it is what lets a copy on).

At scale, from real scores (no synthetic prints): each print of another account in a registry of 10,000, 100,000 or
1,000,000 prints scores against a new voice as an independent draw from the held-out speakers' different-speaker
pairs of single recordings (a print a recording), smoothed by a Gaussian kernel at Silverman's bandwidth so that a
million draws can pass the few thousand pairs measured; the best of them decides. Prints of one voice are not
independent of each other, so counting every print as a draw is the pessimistic side. Printed for each size: the
share of innocent new voices asked to read (best at or above `OWNERSHIP_THRESHOLD`), held for review after their
own reading passed (at or above `SAME_VOICE_THRESHOLD`), refused because their own reading failed; and the share
of copies stopped (a copy scores its own voice as a held-out speaker's upload against their own account did; its
uploader, asked, reads in their own voice: stopped unless that reading passes as another speaker's did, and then
still held when near-identical); beside it, the share of innocent voices asked and held if the tuning speakers'
pairs (ten times as many, smoothed alike) were the distribution instead: how far the tail's estimate carries.

Search: `--prints` synthetic prints (`--model`: `realistic` by default, shaped as the encoder's prints of the shared
clips are, see `Realistic`; or `isotropic`, the same noise in every value, see `Isotropic`; the model's same- and
different-speaker cosines and share of zero values are printed beside the real clips'), four prints a speaker, 250
prints an owner, loaded with COPY into voicegate.voice_prints on an embedded PostgreSQL 18 with the real migrations,
the HNSW index built after the load; then `--queries` searches as the sample check makes them (the best print of
another owner, `backend/records/ownership.sql`, its settings, the search and the transaction's ends in one round
trip), half of a registered speaker's new print, half of a new speaker's, timed from the client: first right after
the server starts (cold: the blocks it had to read from outside shared buffers are counted), then after pg_prewarm has
read the index and the table into shared buffers, each search beside a bare round trip of the same shape (the same
connection, pipeline, settings, parameters and transaction, a trivial statement in place of the search: what the
client and the machine add to any statement), then again with Python's garbage collector off; and
`--exact-queries` of them again with the index off (the exact scan), whose best scores say how many uploads of a
new voice another speaker's print would hold at this size.
Recall at the threshold: of the queries whose exact best score is at or above it, the share the index also finds at
or above it. Targets: p99 at most 10 ms, recall at least 0.99.

The exact scan runs on a connection of its own with index scans off: psycopg prepares a statement it has run five
times, and PostgreSQL keeps that statement's plan, so on the index leg's connection `enable_indexscan = off` would
change nothing; and it plans each search for its own print (`plan_cache_mode = force_custom_plan`), since a generic
plan would parse the print from text again for every row it scans. `--ef-search` runs the index leg again at each
of these `hnsw.ef_search` values (the product's other search settings as they are) beside the product's own: the
recall and time each buys on the same table and queries.
The index's plan is printed with its buffers (EXPLAIN ANALYZE) and the build's notices (a graph that no longer fits
into `maintenance_work_mem` says so). `--keep DIR` keeps the database in DIR between runs: a later run with the same
`--prints` and `--model` skips the COPY and the index build (the seconds they took are read back from DIR), so that
the figures of a million prints can be made again without the build; the synthetic prints and queries are the same
every run.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import NamedTuple

# Before numpy loads: one OpenBLAS thread.
os.environ["OPENBLAS_NUM_THREADS"] = "1"

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402 - after the environment and path setup above
import numpy.typing as npt  # noqa: E402
import psycopg  # noqa: E402
from scipy import special  # noqa: E402

from backend.db.migrate import migrate  # noqa: E402
from backend.db.queries import load_queries  # noqa: E402
from backend.records import ownership  # noqa: E402
from backend.records.ownership import vector_literal  # noqa: E402
from backend.voiceprint import DIMENSIONS, features, voiceprint  # noqa: E402
from backend.voiceprint import OWNERSHIP_THRESHOLD as THRESHOLD  # noqa: E402
from backend.voiceprint import SAME_VOICE_THRESHOLD as SAME_VOICE  # noqa: E402
from backend.voiceprint import THRESHOLD as SPEAKER_THRESHOLD  # noqa: E402
from bench.voiceprint import Clip, cut, read_clips  # noqa: E402
from standins.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres, free_port  # noqa: E402

F32 = npt.NDArray[np.float32]
#: The product's own statements, as the sample check runs them.
QUERIES = load_queries(Path(ownership.__file__).with_suffix(".sql"))
UPLOAD_S = (5.0, 10.0, 15.0, 20.0, 30.0)
#: Uploads cut at each length from each speaker's held-out half.
CUTS = 4
TARGET_HELD = 0.95
TARGET_P99_MS = 10.0
TARGET_RECALL = 0.99
PRINTS_PER_SPEAKER = 4
#: Near-identical: the share of one speaker's uploads against their own account that scores below it.
SAME_VOICE_QUANTILE = 0.05
#: A reading of a consent phrase: at least 3 s of speech (backend/consents/phrase.py), most 5-8 s.
READING_S = (3.0, 5.0, 8.0)
#: A speaker with a single recording reads from its first seconds and uploads the rest, when it is this long.
READING_SPAN_S = 8.0
SINGLE_S = READING_SPAN_S + 5.0
PRINTS_PER_OWNER = 250


def registered(rng: random.Random, own: list[Clip]) -> list[F32]:
    """An account's prints of ``own`` clips: a consent reading of 8-20 s, then two samples of the rest."""
    order = rng.sample(own, len(own))
    target, taken = rng.uniform(8.0, 20.0), 1
    while taken < len(order) - 2 and sum(c.seconds for c in order[:taken]) < target:
        taken += 1
    pieces = [order[:taken], order[taken::2], order[taken + 1 :: 2]]
    prints = []
    for piece in pieces:
        audio = np.concatenate([c.samples for c in piece])[: 30 * features.RATE]
        made = voiceprint(audio, features.RATE)
        if made is not None:
            prints.append(made.vector)
    return prints


def trials(clips: list[Clip], seed: int, rank: int = 1) -> tuple[list[float], list[float]]:
    """Scores of uploads against every account of ``clips``' speakers with several recordings, registered from
    the first half of their recordings: the same speaker's uploads (cut from the other half) against their
    account, and every upload (those, and each recording of a speaker with one) against every other account. An
    upload's score against an account is its best print's (``rank`` 2: its second best, what a match of two of
    the account's prints scores)."""
    rng = random.Random(seed)  # noqa: S311 - a seeded choice of recordings, not security
    own = {s: sorted((c for c in clips if c.speaker == s), key=lambda c: c.name) for s in {c.speaker for c in clips}}
    several = sorted(s for s, mine in own.items() if len(mine) >= 2 * 2)
    accounts = {s: registered(rng, own[s][: len(own[s]) // 2]) for s in several}
    uploads: list[tuple[str, F32]] = []
    for speaker in several:
        pool = np.concatenate([c.samples for c in own[speaker][len(own[speaker]) // 2 :]])
        for length in UPLOAD_S:
            for _ in range(CUTS if pool.size > length * features.RATE else 1):
                if (made := voiceprint(cut(rng, pool, length), features.RATE)) is not None:
                    uploads.append((speaker, made.vector))
    for speaker in sorted(set(own) - set(several)):
        if (made := voiceprint(own[speaker][0].samples, features.RATE)) is not None:
            uploads.append((speaker, made.vector))
    same, different = [], []
    for speaker, upload in uploads:
        for account, prints in accounts.items():
            # An account with fewer prints than ``rank`` cannot match that many: below every threshold.
            scores = [*sorted((float(np.dot(upload, p)) for p in prints), reverse=True), -1.0]
            (same if account == speaker else different).append(scores[min(rank, len(scores)) - 1])
    return same, different


def calibrate(same: list[float], different: list[float]) -> float:
    """The threshold from one half's trials (see the docstring)."""
    low_same, high_different = min(same), max(different)
    if high_different < low_same:
        middle = (low_same + high_different) / 2
    else:
        ordered = sorted({*same, *different})
        candidates = [(a + b) / 2 for a, b in itertools.pairwise(ordered)]
        middle = min(
            candidates,
            key=lambda t: max(sum(s < t for s in same) / len(same), sum(d >= t for d in different) / len(different)),
        )
    return float(np.floor(middle * 100) / 100)


def spread(scores: list[float]) -> str:
    """Count, min, 5 % / 50 % / 95 % quantiles and max of ``scores``."""
    q = np.quantile(scores, [0.05, 0.5, 0.95])
    return f"n={len(scores)} min {min(scores):.3f} p5 {q[0]:.3f} p50 {q[1]:.3f} p95 {q[2]:.3f} max {max(scores):.3f}"


def threshold_figures(speech: Path) -> Real:
    """The score distributions, the calibrated thresholds and their held-out judgement; what the scale figures draw
    on (`Real`)."""
    clips = read_clips(speech)
    tuning, held = [c for c in clips if not c.held_out], [c for c in clips if c.held_out]
    calibration = trials(tuning, seed=1)
    held_out = trials(held, seed=2)
    calibrated = calibrate(*calibration)
    print(f"threshold: calibrated {calibrated:.2f} on the tuning speakers; published THRESHOLD {THRESHOLD:.2f}")
    print(f"{'':44} {'same speaker':62} different speakers")
    rows = [("uploads, tuning speakers (calibration)", *calibration), ("uploads, held-out speakers", *held_out)]
    for name, same, different in rows:
        print(f"{name:44} {spread(same):62} {spread(different)}")
    judged = [("calibration", calibration), ("held out", held_out)]
    # The same uploads judged by the second best print of each account: a match of two of its prints.
    judged += [("calibration, two prints", trials(tuning, seed=1, rank=2))]
    judged += [("held out, two prints", trials(held, seed=2, rank=2))]
    for name, (same, different) in judged:
        count = sum(s >= THRESHOLD for s in same)
        wrong = sum(d >= THRESHOLD for d in different)
        print(
            f"at {THRESHOLD:.2f}, {name}: same speaker held {count}/{len(same)} {count / len(same):.1%} "
            f"(target >= {TARGET_HELD:.0%}); different speakers held {wrong}/{len(different)} (target 0)"
        )
    same_voice = float(np.floor(np.quantile(calibration[0], SAME_VOICE_QUANTILE) * 100) / 100)
    print(
        f"same voice: calibrated {same_voice:.2f} (the tuning uploads' {SAME_VOICE_QUANTILE:.0%} quantile of the same"
        f" speaker, rounded down); published SAME_VOICE_THRESHOLD {SAME_VOICE:.2f}"
    )
    for name, (same, different) in judged[:2]:
        count = sum(s >= SAME_VOICE for s in same)
        wrong = sum(d >= SAME_VOICE for d in different)
        print(
            f"at {SAME_VOICE:.2f}, {name}: same speaker near-identical {count}/{len(same)} {count / len(same):.1%}"
            f" (target >= {TARGET_HELD:.0%}); different speakers {wrong}/{len(different)} (target 0)"
        )
    pairs = {"tuning": pair_scores(tuning), "held out": pair_scores(held)}
    for name, scores in pairs.items():
        at = ", ".join(f"{t:.2f} {sum(s >= t for s in scores)}" for t in (THRESHOLD, SAME_VOICE))
        print(f"single recordings, {name} speakers, different-speaker pairs: {spread(scores)}; at or above {at}")
    genuine, impostor = reading_trials(held, seed=3)
    passed, wrong = sum(s >= SPEAKER_THRESHOLD for s in genuine), sum(s >= SPEAKER_THRESHOLD for s in impostor)
    print(f"readings against their sample, held-out speakers: the same speaker {spread(genuine)}")
    print(f"{'':49} another speaker {spread(impostor)}")
    print(
        f"at {SPEAKER_THRESHOLD:.2f} (THRESHOLD, which a reading is matched to its sample at): the same speaker's"
        f" reading passes {passed}/{len(genuine)} {passed / len(genuine):.2%} (target >= {TARGET_HELD:.0%}); another"
        f" speaker's {wrong}/{len(impostor)} {wrong / len(impostor):.3%}"
    )
    return Real(held_out[0], pairs, 1 - passed / len(genuine), wrong / len(impostor), len(impostor))


def pair_scores(clips: list[Clip]) -> list[float]:
    """The cosine of every pair of ``clips`` of different speakers, a print a recording."""
    made = [(c.speaker, p.vector) for c in clips if (p := voiceprint(c.samples, features.RATE)) is not None]
    return [float(np.dot(a, b)) for (s, a), (t, b) in itertools.combinations(made, 2) if s != t]


def reading_trials(clips: list[Clip], seed: int) -> tuple[list[float], list[float]]:
    """Scores of a reading (a consent phrase: ``READING_S``) against a sample (``UPLOAD_S``), one to one, as an asked
    sample's reading is matched (`backend.records.ownership.answer`): a speaker's own reading against each of their
    samples, and every other speaker's reading against it. A speaker with several recordings reads from the first
    half of them and uploads cuts of the other half; one with a single recording of ``SINGLE_S`` or more reads from
    its first ``READING_SPAN_S`` and uploads the rest (the same session: an easier case, kept apart from no one)."""
    rng = random.Random(seed)  # noqa: S311 - a seeded choice of cuts, not security
    own = {s: sorted((c for c in clips if c.speaker == s), key=lambda c: c.name) for s in {c.speaker for c in clips}}
    readings: list[tuple[str, F32]] = []
    samples: list[tuple[str, F32]] = []
    span = round(READING_SPAN_S * features.RATE)
    for speaker in sorted(own):
        mine = own[speaker]
        if len(mine) >= 2 * 2:
            said = np.concatenate([c.samples for c in mine[: len(mine) // 2]])
            pool = np.concatenate([c.samples for c in mine[len(mine) // 2 :]])
            reads = [cut(rng, said, r) for r in READING_S for _ in range(CUTS)]
            uploads = [cut(rng, pool, u) for u in UPLOAD_S for _ in range(CUTS)]
        elif mine[0].seconds >= SINGLE_S:
            reads = [cut(rng, mine[0].samples[:span], r) for r in READING_S]
            uploads = [mine[0].samples[span:]]
        else:
            continue
        readings += [(speaker, made.vector) for audio in reads if (made := voiceprint(audio, features.RATE))]
        samples += [(speaker, made.vector) for audio in uploads if (made := voiceprint(audio, features.RATE))]
    genuine, impostor = [], []
    for speaker, reading in readings:
        for owner, sample in samples:
            (genuine if owner == speaker else impostor).append(float(np.dot(reading, sample)))
    return genuine, impostor


class Isotropic:
    """Speakers scattered round the real prints' mean by isotropic noise in all 192 values: two speakers near
    the real different-speaker cosines, two prints of one speaker near the real same-speaker cosines. Every print
    about as far from every other: a graph index's worst case, and unlike the encoder's prints."""

    name = "isotropic"

    def __init__(self, real: F32, speakers: list[str]) -> None:
        del speakers
        centre = real.mean(axis=0)
        self.centre = (centre / np.linalg.norm(centre)).astype(np.float32)

    def speakers(self, rng: np.random.Generator, count: int) -> F32:
        """``count`` synthetic speakers (what their prints are drawn round)."""
        centres = self.centre + rng.normal(0.0, 0.045, (count, self.centre.size)).astype(np.float32)
        return np.asarray(centres / np.linalg.norm(centres, axis=1, keepdims=True), dtype=np.float32)

    def prints(self, rng: np.random.Generator, centres: F32) -> F32:
        """One unit print of each speaker of ``centres``."""
        drawn = centres + rng.normal(0.0, 0.022, centres.shape).astype(np.float32)
        return drawn / np.linalg.norm(drawn, axis=1, keepdims=True)


class Realistic:
    """Prints shaped as the encoder's are, from its prints of the real clips: a speaker is their mean moved along
    the real prints' own deviations from it (their principal components, at their variances), a print of the
    speaker that moved again along the real prints' deviations from their own speaker's mean (the within-speaker
    components); then the print is brought to unit norm. The two scales were fitted by hand (on GE2E's prints of
    six speakers) so that the synthetic same- and different-speaker cosines matched the real ones; they are
    printed beside the real ones each run, and were not fitted again for ECAPA-TDNN's."""

    name = "realistic"
    #: How far speakers and a speaker's prints move, in units of the real deviations' spread (their fit).
    BETWEEN = 1.7
    WITHIN = 1.6

    def __init__(self, real: F32, speakers: list[str]) -> None:
        self.mean = real.mean(axis=0)
        self.between = (real - self.mean) / np.sqrt(len(real) - 1)
        names = sorted(set(speakers))
        own = [real[[s == name for s in speakers]] for name in names]
        self.within = np.concatenate([r - r.mean(axis=0) for r in own]) / np.sqrt(len(real) - len(names))

    def speakers(self, rng: np.random.Generator, count: int) -> F32:
        """``count`` synthetic speakers (the points, before the ReLU, their prints are drawn round)."""
        moves = rng.standard_normal((count, len(self.between)), dtype=np.float32)
        return (self.mean + self.BETWEEN * moves @ self.between).astype(np.float32)

    def prints(self, rng: np.random.Generator, centres: F32) -> F32:
        """One unit print of each speaker of ``centres``."""
        moves = rng.standard_normal((len(centres), len(self.within)), dtype=np.float32)
        drawn = centres + self.WITHIN * moves @ self.within
        return (drawn / np.linalg.norm(drawn, axis=1, keepdims=True)).astype(np.float32)


MODELS = {model.name: model for model in (Realistic, Isotropic)}
Model = Realistic | Isotropic


def synthetic_prints(model: Model, rng: np.random.Generator, count: int) -> tuple[F32, F32]:
    """``count`` unit prints of ``model``, ``PRINTS_PER_SPEAKER`` per synthetic speaker in a row, and the
    speakers; drawn a block of speakers at a time (a million prints take 1 GB)."""
    centres = model.speakers(rng, count // PRINTS_PER_SPEAKER)
    prints = np.empty((len(centres) * PRINTS_PER_SPEAKER, centres.shape[1]), dtype=np.float32)
    for start in range(0, len(centres), _CHUNK):
        block = np.repeat(centres[start : start + _CHUNK], PRINTS_PER_SPEAKER, axis=0)
        prints[start * PRINTS_PER_SPEAKER : start * PRINTS_PER_SPEAKER + len(block)] = model.prints(rng, block)
    return prints, centres


def model_check(model: Model, real: F32, speakers: list[str]) -> None:
    """The synthetic prints' same- and different-speaker cosines and share of zeros beside the real prints'."""
    prints, _ = synthetic_prints(model, np.random.default_rng(3), 4000)
    same = [float(np.dot(prints[i + a], prints[i + b])) for i in range(0, 4000, 4) for a, b in ((0, 1), (2, 3))]
    different = [float(np.dot(prints[i], prints[i + 4])) for i in range(0, 3996, 4)]
    real_same: list[float] = []
    real_different: list[float] = []
    for i, j in itertools.combinations(range(len(real)), 2):
        (real_same if speakers[i] == speakers[j] else real_different).append(float(np.dot(real[i], real[j])))
    print(f"synthetic prints: {model.name} (--model; {', '.join(MODELS)})")
    print(f"  {'':28} {'same speaker':62} different speakers")
    print(f"  {'real clips (' + str(len(real)) + ')':28} {spread(real_same):62} {spread(real_different)}")
    print(f"  {model.name + ' (4,000)':28} {spread(same):62} {spread(different)}")
    print(f"  values exactly 0: real {np.mean(real == 0):.1%}, {model.name} {np.mean(prints == 0):.1%}")


class Real(NamedTuple):
    """What the held-out speakers' real speech says, for the scale figures."""

    #: The same speaker's uploads against their own account: what a copy of a registered voice scores.
    copies: list[float]
    #: Different-speaker pairs of single recordings (a print each), of the tuning and of the held-out speakers.
    pairs: dict[str, list[float]]
    #: The share of the same speaker's readings that do not match their sample (an innocent refused by a reading).
    refused: float
    #: The share of another speaker's readings that match a sample (a copy let on by its copier's reading).
    accepted: float
    #: How many impostor readings that share was measured on.
    impostors: int


#: Registry sizes (prints) of the scale figures.
SCALE_SIZES = (10_000, 100_000, 1_000_000)


def tail(scores: list[float], threshold: float) -> float:
    """The chance that one different-speaker score drawn from ``scores`` smoothed (a Gaussian kernel at Silverman's
    bandwidth about each score) is at or above ``threshold``."""
    data = np.asarray(scores)
    iqr = float(np.subtract(*np.quantile(data, [0.75, 0.25])))
    bandwidth = 0.9 * min(float(data.std()), iqr / 1.34) * len(data) ** -0.2
    return float(np.mean(special.ndtr((data - threshold) / bandwidth)))


def reached(chance: float, draws: int) -> float:
    """The chance that the best of ``draws`` independent scores, each at or above a threshold with ``chance``,
    is."""
    return float(-np.expm1(draws * np.log1p(-chance))) if chance < 1 else 1.0


def scale_figures(real: Real) -> None:
    """What the product's rule does to innocent new voices and to copies in registries of ``SCALE_SIZES`` prints,
    from real scores (see the docstring): each print of another account an independent draw from the held-out
    speakers' different-speaker pair scores, smoothed; a copy's own voice scores as a held-out speaker's upload
    against their own account did; readings pass and fail as they did on the held-out speakers. The tuning speakers'
    pairs, ten times as many, give the same figures for innocent voices beside them: how far the tail's estimate
    carries."""
    held, tuning = real.pairs["held out"], real.pairs["tuning"]
    asked_at, same_at = tail(held, THRESHOLD), tail(held, SAME_VOICE)
    tuning_asked, tuning_same = tail(tuning, THRESHOLD), tail(tuning, SAME_VOICE)
    print(
        f"ownership at scale, from real scores: another account's print scores as the {len(held):,} held-out"
        f" different-speaker pairs, smoothed (one at or above {THRESHOLD:.2f}: {asked_at:.2e}, {SAME_VOICE:.2f}:"
        f" {same_at:.2e}; the {len(tuning):,} tuning pairs': {tuning_asked:.2e}, {tuning_same:.2e}); a copy's own"
        f" voice as the {len(real.copies)} held-out same-speaker uploads; a reading refused for its own speaker"
        f" {real.refused:.2%}, passed for another {real.accepted:.3%} ({real.impostors:,} trials)"
    )
    print(
        f"{'registry':>10}  {'new voices asked':>16}  {'held for review':>15}  {'refused by own reading':>22}"
        f"  {'copies stopped: refused + held':>30}  {'tuning pairs: asked / held':>26}"
    )
    for size in SCALE_SIZES:
        asked, held_for_review = reached(asked_at, size), reached(same_at, size)
        refused, kept = [], []
        for own in real.copies:
            # The best of the copy's own voice and of everyone else's prints.
            matched = 1.0 if own >= THRESHOLD else reached(asked_at, size)
            identical = 1.0 if own >= SAME_VOICE else reached(same_at, size)
            # Asked to read, the copier reads in their own voice: refused unless it passes for the sample's, and then
            # held still when the copy is near-identical to the voice it copies.
            refused.append(matched * (1 - real.accepted))
            kept.append(matched * real.accepted * identical)
        stopped = f"{float(np.mean(refused)) + float(np.mean(kept)):.3%}: "
        stopped += f"{float(np.mean(refused)):.3%} + {float(np.mean(kept)):.3%}"
        sensitivity = f"{reached(tuning_asked, size):.1%} / {reached(tuning_same, size) * (1 - real.refused):.3%}"
        print(
            f"{size:>10,}  {asked:>16.2%}  {held_for_review * (1 - real.refused):>15.3%}"
            f"  {asked * real.refused:>22.3%}  {stopped:>30}  {sensitivity:>26}"
        )


#: One row of COPY's binary format for (owner_id, consent_id, embedding): the field count, then each field's length
#: and bytes (a uuid's 16; a pgvector's dimensions, an unused int16 and big-endian float32 values).
_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("owner_len", ">i4"),
        ("owner", "V16"),
        ("consent_len", ">i4"),
        ("consent", "V16"),
        ("vector_len", ">i4"),
        ("dimensions", ">i2"),
        ("unused", ">i2"),
        ("vector", ">f4", DIMENSIONS),
    ]
)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_CHUNK = 50_000


def copy_rows(prints: F32, start: int, owners: npt.NDArray[np.void], rng: np.random.Generator) -> bytes:
    """COPY binary rows for ``prints``, the first being number ``start`` of the table."""
    rows = np.zeros(len(prints), dtype=_ROW)
    rows["fields"], rows["owner_len"], rows["consent_len"] = 3, 16, 16
    rows["vector_len"], rows["dimensions"] = 4 + 4 * prints.shape[1], prints.shape[1]
    rows["owner"] = owners[(start + np.arange(len(prints))) // PRINTS_PER_OWNER]
    rows["consent"] = np.frombuffer(rng.bytes(16 * len(prints)), dtype="V16")
    rows["vector"] = prints
    return rows.tobytes()


def load(dsn: str, prints: F32) -> str:
    """COPY ``prints`` (binary) into voicegate.voice_prints, an owner per ``PRINTS_PER_OWNER``, each print a
    consent's (the owner and consent foreign keys dropped first: the bench fills no users or consents), then build
    the HNSW index as the migrations define it; what it took, in words."""
    started = time.perf_counter()
    rng = np.random.default_rng(11)
    owners = np.frombuffer(rng.bytes(16 * (len(prints) // PRINTS_PER_OWNER + 1)), dtype="V16")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.add_notice_handler(
            lambda notice: print(f"notice: {notice.message_primary}; {notice.message_detail or ''}")
        )
        index = conn.execute(
            "select indexdef from pg_indexes"
            " where schemaname = 'voicegate' and indexname = 'voice_prints_embedding_idx'"
        ).fetchone()
        assert index is not None
        conn.execute("drop index voicegate.voice_prints_embedding_idx")
        conn.execute("alter table voicegate.voice_prints drop constraint voice_prints_owner_id_fkey")
        conn.execute("alter table voicegate.voice_prints drop constraint voice_prints_consent_id_fkey")
        statement = "copy voicegate.voice_prints (owner_id, consent_id, embedding) from stdin (format binary)"
        with conn.cursor().copy(statement) as copy:
            copy.write(_COPY_HEADER)
            for start in range(0, len(prints), _CHUNK):
                copy.write(copy_rows(prints[start : start + _CHUNK], start, owners, rng))
            copy.write(_COPY_TRAILER)
        loaded = time.perf_counter() - started
        # The graph of a million prints is about 1.3 GB: built in memory, not from disk.
        conn.execute("set maintenance_work_mem = '4GB'")
        conn.execute("set max_parallel_maintenance_workers = 1")  # with the leader, both cores of the machine
        conn.execute(str(index[0]))
        conn.execute("vacuum analyze voicegate.voice_prints")
    built = time.perf_counter() - started - loaded
    return (
        f"loaded {len(prints):,} prints by COPY in {loaded:.0f} s; HNSW index built after in {built:.0f} s"
        f" (maintenance_work_mem 4GB, 1 parallel worker): {index[0]}"
    )


Conn = psycopg.Connection[tuple[object, ...]]


def search(conn: Conn, query: F32, owner: uuid.UUID, ef_search: int | None = None) -> tuple[float, float]:
    """The best score of another owner's print for ``query``, as the product asks it (at ``ef_search`` instead of
    the product's when given); and milliseconds taken."""
    started = time.perf_counter()
    # In the service's transaction, as the product's (backend/records/ownership.py): one round trip, its opening,
    # settings, search and end in one pipeline.
    with conn.pipeline():
        conn.execute("begin")
        conn.execute(QUERIES["search_settings"])
        if ef_search is not None:
            conn.execute("select set_config('hnsw.ef_search', %s, true)", (str(ef_search),))
        found = conn.execute(QUERIES["best_other"], {"print": vector_literal(query), "owner_id": owner})
        conn.execute("commit")
    row = found.fetchone()
    assert row is not None
    return float(row[3]), (time.perf_counter() - started) * 1000


def bare(conn: Conn, query: F32, owner: uuid.UUID) -> tuple[float, float]:
    """`search`'s round trip with a trivial statement of the same parameters and row in place of the search (its
    score NaN), and milliseconds taken: what the client, the connection and the machine add to any search."""
    started = time.perf_counter()
    with conn.pipeline():
        conn.execute("begin")
        conn.execute(QUERIES["search_settings"])
        found = conn.execute(
            "select %(owner_id)s::uuid, null::uuid, null::uuid, length(%(print)s::text)::float8 * 'NaN'",
            {"print": vector_literal(query), "owner_id": owner},
        )
        conn.execute("commit")
    assert found.fetchone() is not None
    return float("nan"), (time.perf_counter() - started) * 1000


def blocks_read(conn: Conn) -> int:
    """Blocks of voicegate.voice_prints and its indexes read from outside shared buffers since the server
    started."""
    row = conn.execute(
        "select coalesce(heap_blks_read, 0) + coalesce(idx_blks_read, 0) from pg_statio_all_tables"
        " where schemaname = 'voicegate' and relname = 'voice_prints'"
    ).fetchone()
    assert row is not None
    return int(row[0])


def prewarm(conn: Conn) -> str:
    """Read the registry's index and table into shared buffers (pg_prewarm), as an operator can after a restart
    (docs/ownership.md); what it read and took, in words."""
    started = time.perf_counter()
    conn.execute("create extension if not exists pg_prewarm")
    row = conn.execute(
        "select pg_prewarm('voicegate.voice_prints_embedding_idx'), pg_prewarm('voicegate.voice_prints')"
    ).fetchone()
    assert row is not None
    return f"pg_prewarm: index {row[0]:,} blocks, table {row[1]:,} blocks, in {time.perf_counter() - started:.1f} s"


def plan(conn: Conn, query: F32, owner: uuid.UUID) -> str:
    """The search's plan as it ran (EXPLAIN ANALYZE, BUFFERS), on one line, the vector left out."""
    with conn.transaction():
        conn.execute(QUERIES["search_settings"])
        params = {"print": vector_literal(query), "owner_id": owner}
        rows = conn.execute("explain (analyze, buffers, costs off) " + QUERIES["best_other"], params).fetchall()
    lines = (str(r[0]).strip() for r in rows)
    return " / ".join(line for line in lines if not line.startswith(("Order By", "Sort Key", "Filter")))


def server_ms(conn: Conn, query: F32, owner: uuid.UUID) -> float:
    """The search's time in the server alone (EXPLAIN ANALYZE's execution time, no timing of each node): what the
    client's figure is apart from its round trips, which a busy machine's scheduler stretches."""
    with conn.transaction():
        conn.execute(QUERIES["search_settings"])
        params = {"print": vector_literal(query), "owner_id": owner}
        rows = conn.execute("explain (analyze, timing off, summary on) " + QUERIES["best_other"], params).fetchall()
    [ms] = [float(str(r[0]).split()[2]) for r in rows if str(r[0]).startswith("Execution Time")]
    return ms


def kept_load(keep: Path | None, dsn: str, prints: F32, model: str) -> str:
    """Load and index ``prints`` (of ``model``) unless ``keep`` holds them already (its `loaded` file says how
    many, of which model, and what the load took); what the load took, in words."""
    record = keep / "loaded" if keep is not None else None
    if record is not None and record.exists():
        kept, took = record.read_text().split("\n", 1)
        if kept == f"{len(prints)} {model}":
            return f"kept in {keep}: {took.strip()}"
        raise SystemExit(f"{keep} holds {kept} prints, not {len(prints)} {model}: give another --keep")
    migrate(dsn)
    took = load(dsn, prints)
    if record is not None:
        record.write_text(f"{len(prints)} {model}\n{took}\n")
    return took


def search_figures(
    count: int,
    queries: int,
    exact_queries: int,
    ef_searches: list[int],
    *,
    keep: Path | None,
    model_name: str,
    speech: Path,
) -> None:
    """The HNSW search beside the exact scan on one table of ``count`` synthetic prints of ``model_name``."""
    rng = np.random.default_rng(7)
    clips = [c for c in read_clips(speech) if not c.held_out]
    made = [(c.speaker, p.vector) for c in clips if (p := voiceprint(c.samples, features.RATE)) is not None]
    speakers = [speaker for speaker, _ in made]
    real = np.array([vector for _, vector in made], dtype=np.float32)
    model = MODELS[model_name](real, speakers)
    model_check(model, real, speakers)
    prints, centres = synthetic_prints(model, rng, count)
    half = queries // 2
    # Half a registered speaker's new print, half a new speaker's.
    known = model.prints(rng, centres[rng.integers(0, len(centres), half)])
    asked = np.concatenate([known, model.prints(rng, model.speakers(rng, queries - half))])
    with tempfile.TemporaryDirectory(prefix="vg-ownership-") as tmp:
        server = EmbeddedPostgres(
            (keep or Path(tmp)) / "pgdata", port=free_port(), settings={**FAST_UNSAFE_SETTINGS, "shared_buffers": "3GB"}
        )
        server.ensure_running()
        try:
            dsn = server.dsn
            print(kept_load(keep, dsn, prints, model.name))
            owner = uuid.uuid4()  # asks as an account of its own: every print is another owner's
            every = max(1, len(asked) // exact_queries)
            paired = asked[::every][:exact_queries]
            with psycopg.connect(dsn, autocommit=True) as conn:
                read = blocks_read(conn)
                legs = {"HNSW, product, cold": [search(conn, vector, owner) for vector in asked]}
                print(
                    f"cold leg (the first {len(asked)} searches after the server's start): {blocks_read(conn) - read:,}"
                    " blocks of the table and index read from outside shared buffers"
                )
                print(prewarm(conn))
                print("plan:", plan(conn, asked[0], owner))
                bare_leg, product_leg = [], []
                # Interleaved, so that both see the same moments of the machine.
                for vector in asked:
                    bare_leg.append(bare(conn, vector, owner))
                    product_leg.append(search(conn, vector, owner))
                legs["bare: the same round trip, no search"] = bare_leg
                legs["HNSW, as the product"] = product_leg
                gc.disable()
                legs["HNSW, product, no GC"] = [search(conn, vector, owner) for vector in asked]
                gc.enable()
                for ef in ef_searches:
                    legs[f"HNSW, ef_search {ef}"] = [search(conn, vector, owner, ef) for vector in asked]
                inside = np.quantile([server_ms(conn, vector, owner) for vector in asked], [0.5, 0.99])
                print(f"HNSW, as the product, in the server alone: p50 {inside[0]:.2f} ms, p99 {inside[1]:.2f} ms")
            # A custom plan each time: in a generic one the print's cast from text would be evaluated for every row.
            exact_options = "-c enable_indexscan=off -c plan_cache_mode=force_custom_plan"
            with psycopg.connect(dsn, autocommit=True, options=exact_options) as conn:
                print("exact plan:", plan(conn, asked[0], owner))
                exact = [search(conn, vector, owner) for vector in paired]
        finally:
            if keep is not None:
                server.stop()
            else:
                server.remove()
    report(legs, exact, every, half)


def report(legs: dict[str, list[tuple[float, float]]], exact: list[tuple[float, float]], every: int, half: int) -> None:
    """Each index leg's latencies and its recall at the threshold over the queries the exact scan ran too (every
    ``every``-th; the first ``half`` queries a registered speaker's), beside the exact scan's latencies."""
    ms = [m for _, m in exact]
    q = np.quantile(ms, [0.5, 0.99])
    # The first half of the queries are registered speakers' new prints, the second half new speakers'.
    fresh = [score for n, (score, _) in enumerate(exact) if n * every >= half]
    known = [score for n, (score, _) in enumerate(exact) if n * every < half]
    print(
        f"exact best at or above {THRESHOLD:.2f}: registered speakers {sum(s >= THRESHOLD for s in known)}"
        f"/{len(known)}, new speakers {sum(s >= THRESHOLD for s in fresh)}/{len(fresh)} (another speaker's print"
        f" that near: a new voice held); new speakers' best {spread(fresh)}"
    )
    print(f"{'exact scan':38} {len(ms):5} searches: p50 {q[0]:8.2f} ms, p99 {q[1]:8.2f} ms, max {max(ms):8.2f} ms")
    for name, runs in legs.items():
        ms = [m for _, m in runs]
        q = np.quantile(ms, [0.5, 0.99])
        if all(np.isnan(score) for score, _ in runs):
            print(f"{name:38} {len(ms):5} round trips: p50 {q[0]:8.2f} ms, p99 {q[1]:8.2f} ms, max {max(ms):8.2f} ms")
            continue
        both = list(zip(runs[::every][: len(exact)], exact, strict=True))
        above = [(i, e) for i, e in both if e[0] >= THRESHOLD]
        found = sum(i[0] >= THRESHOLD for i, _ in above)
        same_best = sum(abs(i[0] - e[0]) < 1e-5 for i, e in both)
        recall = found / len(above) if above else float("nan")
        ratio = statistics.mean(m for _, m in exact) / statistics.mean(ms)
        print(
            f"{name:38} {len(ms):5} searches: p50 {q[0]:8.2f} ms, p99 {q[1]:8.2f} ms, max {max(ms):8.2f} ms;"
            f" recall at {THRESHOLD:.2f} {found}/{len(above)} = {recall:.3f},"
            f" the exact best in {same_best}/{len(both)};"
            f" exact/index mean time {ratio:.0f}x"
        )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"targets: p99 <= {TARGET_P99_MS:.0f} ms with recall >= {TARGET_RECALL}; load average now {load}")


def main() -> None:
    """Run both parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--speech", type=Path, required=True, help="bench/voiceprint_corpus.py's speech")
    parser.add_argument("--prints", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--exact-queries", type=int, default=200)
    parser.add_argument("--skip-threshold", action="store_true", help="the search alone")
    parser.add_argument("--skip-search", action="store_true", help="the threshold alone")
    parser.add_argument("--ef-search", default="", help="hnsw.ef_search values to run the index leg at too: 40,200")
    parser.add_argument("--keep", type=Path, help="keep the database here between runs (made if missing)")
    parser.add_argument("--model", choices=list(MODELS), default=Realistic.name, help="the synthetic prints")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    if not args.skip_threshold:
        scale_figures(threshold_figures(args.speech))
    if not args.skip_search:
        ef_searches = [int(v) for v in args.ef_search.split(",") if v]
        search_figures(
            args.prints,
            args.queries,
            args.exact_queries,
            ef_searches,
            keep=args.keep,
            model_name=args.model,
            speech=args.speech,
        )


if __name__ == "__main__":
    main()
