"""Benchmark: voiceprints (backend/voiceprint, ECAPA-TDNN) on real speech of 265 speakers, beside GE2E, the encoder
voicegate ran before (devkit/ge2e), measured in the same run on one core; and the thresholds set on that speech.

    python bench/voiceprint_corpus.py CORPUS --resemblyzer PATH --autovc PATH   # once: the speech
    pip download --no-deps -d WHEELS resemblyzer==0.1.4                         # once: GE2E's weights
    python bench/voiceprint.py CORPUS --ge2e-wheel WHEELS/Resemblyzer-0.1.4-py3-none-any.whl [--core N]

The speech (bench/voiceprint_corpus.py says where each file comes from, and its licence): LibriSpeech test-other
(10 speakers x 10 utterances) and train-clean-100 (251 x 1), VCTK (4 x 10). A quarter of the speakers is held out
of everything chosen here (the manifest's `split`): 62 speakers, 4 of them with 10 recordings; the figures that
judge the encoder are theirs. The tuning speakers (203, 10 with 10 recordings) set every threshold.

Speed: CPU milliseconds of one 5 s clip's voiceprint, end to end (resampling, VAD, filterbanks, network), the
process pinned to one core, onnxruntime on one thread, over the first 5 s of every held-out recording of 5 s
or more (median, after a warm-up); the int8 graph voicegate runs, the same graph in float32, GE2E. Target: 150 ms.

Quality: one print per recording, every pair scored by cosine: the equal-error rate, the different-speaker pairs'
99th and 99.9th percentiles, the same-speaker pairs' 5th. Targets, on the held-out speakers: EER at most 0.4 %,
different-speaker p99.9 at most 0.5. `THRESHOLD` is the tuning speakers' equal-error point, rounded to two
decimals.

Splices: another speaker's speech put into a sample of the consenting one, judged window by window
(`backend.voiceprint.windows`) beside the whole-sample rule, made of the recordings of the speakers with ten each:
for each speaker, consents of 8-20 s of their recordings, genuine samples (5-30 s) of their other recordings, and
splices: 8-24 s of their other recordings with 1.5, 3, 4 or 8 s of another speaker's speech at the beginning, in
the middle or at the end; and 4 s of the speaker followed by 4-30 s of another. The tuning speakers' trials set each
window rule's threshold (the 0.5 % quantile of their genuine samples' lowest window, rounded down), judged on the
held-out speakers' trials (`--held-out-splices` runs those alone, at the published thresholds). Targets: 3 s or
more of another speaker refused in at least 95 % of splices, genuine
samples refused in at most 1 %.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Before numpy loads: one OpenBLAS thread, as on the one core the bench measures.
os.environ["OPENBLAS_NUM_THREADS"] = "1"

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402 - after the environment and path setup above
import numpy.typing as npt  # noqa: E402
import soundfile  # noqa: E402

from backend.voiceprint import THRESHOLD, Voiceprint, features, speech_prints, voiceprint, weights  # noqa: E402
from backend.voiceprint.encoder import Encoder, shared_encoder  # noqa: E402
from backend.voiceprint.windows import (  # noqa: E402
    REFERENCE_THRESHOLD,
    SELF_THRESHOLD,
    reference_scores,
    second_voice,
    self_scores,
    unlike,
)
from bench.voiceprint_corpus import entries  # noqa: E402
from devkit.ge2e import GE2E  # noqa: E402

F32 = npt.NDArray[np.float32]
TARGET_MS_PER_CLIP = 150.0
TARGET_EER = 0.004
TARGET_P999 = 0.5
CLIP_S = 5.0
#: Splices: the lengths of another speaker's speech put in, where, and the evaluator's case (4 s of the
#: speaker, then this much of another).
FOREIGN_S = (1.5, 3.0, 4.0, 8.0)
POSITIONS = ("beginning", "middle", "end")
TAIL_S = (4.0, 8.0, 20.0)
GENUINE_S = (5.0, 10.0, 15.0, 20.0, 30.0)
#: Genuine samples cut from each consent's other recordings at each length (one when they are no longer).
GENUINE_CUTS = 2
#: Of each speaker's consents, how many have their other recordings spliced, with how many other speakers.
SPLICE_CONSENTS = 1
SPLICE_OTHERS = 2
#: The window thresholds' calibration: refuse at most this share of the tuning speakers' genuine samples.
GENUINE_QUANTILE = 0.005
TARGET_REFUSED = 0.95
TARGET_GENUINE = 0.01


@dataclass(frozen=True)
class Clip:
    """One recording: its name, speaker, whether its speaker is held out, and 16 kHz mono samples."""

    name: str
    speaker: str
    held_out: bool
    samples: F32

    @property
    def seconds(self) -> float:
        """Its length."""
        return self.samples.size / features.RATE


def read_clips(folder: Path) -> list[Clip]:
    """The manifest's recordings, from ``folder`` (bench/voiceprint_corpus.py's DEST)."""
    clips = []
    for entry in entries():
        path = folder / entry.speaker / entry.name
        if not path.is_file():
            raise SystemExit(f"{path} is missing: python bench/voiceprint_corpus.py {folder} ... puts it there")
        samples, rate = soundfile.read(path, dtype="float32")
        clips.append(Clip(path.stem, entry.speaker, entry.held_out, features.mono_16k(samples, rate)))
    return clips


def cpu_ms(work: Callable[[], object]) -> float:
    """CPU milliseconds of one run of ``work``."""
    started = time.process_time()
    work()
    return (time.process_time() - started) * 1000


def speed(clips: list[Clip], encoders: dict[str, Callable[[F32], object]]) -> dict[str, float]:
    """Median CPU ms of a 5 s clip's print, end to end, per encoder."""
    cuts = [c.samples[: round(CLIP_S * features.RATE)] for c in clips if c.held_out and c.seconds >= CLIP_S]
    found = {}
    for name, make in encoders.items():
        make(cuts[0])
        found[name] = statistics.median(cpu_ms(functools.partial(make, cut)) for cut in cuts)
    return found


@dataclass(frozen=True)
class Pairs:
    """Every pair's cosine of a set of prints: same speaker, different speakers."""

    same: npt.NDArray[np.float64]
    different: npt.NDArray[np.float64]


def pairs(clips: list[Clip], prints: dict[str, F32]) -> Pairs:
    """The cosines of every pair of ``clips``."""
    matrix = np.stack([prints[c.name] for c in clips]).astype(np.float64)
    speakers = np.array([c.speaker for c in clips])
    upper = np.triu_indices(len(clips), 1)
    scores = (matrix @ matrix.T)[upper]
    one = speakers[upper[0]] == speakers[upper[1]]
    return Pairs(scores[one], scores[~one])


def equal_error(p: Pairs) -> tuple[float, float]:
    """The equal-error rate and the cosine where it falls: false rejects (same below t) and false accepts
    (different at or above t) over every score as t; at the t where the two are nearest, their mean."""
    ts = np.sort(np.concatenate([p.same, p.different]))
    frr = np.searchsorted(np.sort(p.same), ts, side="left") / p.same.size
    far = 1 - np.searchsorted(np.sort(p.different), ts, side="left") / p.different.size
    at = int(np.argmin(np.abs(frr - far)))
    return float(frr[at] + far[at]) / 2, float(ts[at])


def calibration_threshold(p: Pairs) -> float:
    """The cosine at the equal-error point: of the midpoints between neighbouring scores, those where the
    larger of the two error rates is lowest, and of them the middle one."""
    ordered = np.unique(np.concatenate([p.same, p.different]))
    candidates = (ordered[:-1] + ordered[1:]) / 2
    frr = np.searchsorted(np.sort(p.same), candidates, side="left") / p.same.size
    far = 1 - np.searchsorted(np.sort(p.different), candidates, side="left") / p.different.size
    worst = np.maximum(frr, far)
    return float(np.median(candidates[worst == worst.min()]))


def rates(p: Pairs, threshold: float) -> str:
    """False rejects and false accepts at ``threshold``, as counts and shares."""
    rejects, accepts = int((p.same < threshold).sum()), int((p.different >= threshold).sum())
    same, different = p.same.size, p.different.size
    return f"{rejects}/{same} {rejects / same:.2%} / {accepts}/{different} {accepts / different:.3%}"


ROWS: list[tuple[str, Callable[[Pairs], str]]] = [
    ("pairs same / different", lambda p: f"{p.same.size} / {p.different.size}"),
    ("EER (at cosine)", lambda p: "{:.2%} ({:.3f})".format(*equal_error(p))),
    (
        "different p99 / p99.9 / max",
        lambda p: "{:.3f} / {:.3f} / {:.3f}".format(*np.quantile(p.different, [0.99, 0.999, 1])),
    ),
    ("same p5 / min", lambda p: "{:.3f} / {:.3f}".format(*np.quantile(p.same, [0.05, 0]))),
    ("mean same / different", lambda p: f"{p.same.mean():.3f} / {p.different.mean():.3f}"),
]


def quality(clips: list[Clip], prints: dict[str, dict[str, F32]]) -> dict[str, Pairs]:
    """The pairs' figures of every encoder on the tuning and the held-out speakers; the held-out pairs."""
    held: dict[str, Pairs] = {}
    print(f"{'pairs of recordings, cosine':34}" + "".join(f"{name:>34}" for name in prints))
    for label, chosen in (
        ("tuning speakers", [c for c in clips if not c.held_out]),
        ("held-out speakers", [c for c in clips if c.held_out]),
    ):
        print(f"{label}: {len({c.speaker for c in chosen})} speakers, {len(chosen)} recordings")
        found = {name: pairs(chosen, of) for name, of in prints.items()}
        for row, cell in ROWS:
            print(f"  {row:32}" + "".join(f"{cell(p):>34}" for p in found.values()))
        print(f"  {'FRR / FAR at ' + str(THRESHOLD):32}{rates(found['ECAPA int8 (voicegate)'], THRESHOLD):>34}")
        if label.startswith("held"):
            held = found
    return held


@dataclass(frozen=True)
class Trial:
    """One sample judged against one consent: genuine (``foreign_s`` 0) or a splice of ``foreign_s`` seconds of
    another speaker at ``position`` (its true seconds in ``foreign``); the evaluator's case is ``tail``."""

    kind: str
    speaker: str
    position: str
    foreign_s: float
    foreign: tuple[float, float] | None
    seconds: float
    whole: float
    lowest: float
    lowest_self: float
    unlike: tuple[tuple[float, float], ...]
    second: tuple[tuple[float, float], ...]


def judged(
    kind: str,
    speaker: str,
    audio: F32,
    consent: Voiceprint,
    *,
    position: str = "",
    foreign_s: float = 0.0,
    foreign: tuple[float, float] | None = None,
) -> Trial:
    """``audio`` judged against ``consent``: the whole-sample cosine, the lowest windows, and what each rule
    refuses at the published thresholds."""
    prints = speech_prints(audio, features.RATE)
    if prints is None:
        raise SystemExit(f"a {kind} sample of {speaker} holds too little speech for a voiceprint")
    made = prints.voiceprint()
    assert made is not None
    scores, own = reference_scores(prints, consent), self_scores(prints)
    return Trial(
        kind=kind,
        speaker=speaker,
        position=position,
        foreign_s=foreign_s,
        foreign=foreign,
        seconds=audio.size / features.RATE,
        whole=made.similarity(consent),
        lowest=float(scores.min()) if scores.size else 1.0,
        lowest_self=float(own.min()) if own.size else 1.0,
        unlike=tuple((s.start_s, s.end_s) for s in unlike(prints, consent)),
        second=tuple((s.start_s, s.end_s) for s in second_voice(prints)),
    )


def cut(rng: random.Random, audio: F32, seconds: float) -> F32:
    """``seconds`` of ``audio`` from a random place (all of it when it is shorter)."""
    length = round(seconds * features.RATE)
    if audio.size <= length:
        return audio
    start = rng.randrange(audio.size - length)
    return audio[start : start + length]


def splice_trials(clips: list[Clip], consents: int, seed: int) -> list[Trial]:
    """Genuine samples and splices of ``clips``' speakers with several recordings (see the docstring)."""
    rng = random.Random(seed)  # noqa: S311 - a seeded choice of recordings, not security
    counts = {s: sum(c.speaker == s for c in clips) for s in {c.speaker for c in clips}}
    mine = {who: [c for c in clips if c.speaker == who] for who in sorted(s for s, n in counts.items() if n >= 5)}
    trials = []
    for speaker, own in mine.items():
        others = rng.sample(sorted(set(mine) - {speaker}), min(SPLICE_OTHERS, len(mine) - 1))
        for round_ in range(consents):
            order = rng.sample(own, len(own))
            target, taken = rng.uniform(8.0, 20.0), 0
            while taken < len(order) - 2 and sum(c.seconds for c in order[:taken]) < target:
                taken += 1
            consent = voiceprint(
                np.concatenate([c.samples for c in order[:taken]])[: 20 * features.RATE], features.RATE
            )
            assert consent is not None
            pool = np.concatenate([c.samples for c in order[taken:]])
            for length in GENUINE_S:
                for _ in range(GENUINE_CUTS if pool.size > length * features.RATE else 1):
                    trials.append(judged("genuine", speaker, cut(rng, pool, length), consent))
            for other in others if round_ < SPLICE_CONSENTS else ():
                theirs = np.concatenate([c.samples for c in rng.sample(mine[other], len(mine[other]))])
                for foreign_s in FOREIGN_S:
                    for position in POSITIONS:
                        base, foreign = cut(rng, pool, rng.uniform(8.0, 24.0)), cut(rng, theirs, foreign_s)
                        at = {"beginning": 0, "middle": base.size // 2, "end": base.size}[position]
                        audio = np.concatenate([base[:at], foreign, base[at:]])
                        span = (at / features.RATE, (at + foreign.size) / features.RATE)
                        trials.append(
                            judged(
                                "splice", speaker, audio, consent, position=position, foreign_s=foreign_s, foreign=span
                            )
                        )
                for tail_s in TAIL_S if round_ == 0 else ():
                    head = cut(rng, pool, 4.0)
                    audio = np.concatenate([head, cut(rng, theirs, tail_s)])
                    span = (head.size / features.RATE, audio.size / features.RATE)
                    trials.append(
                        judged("tail", speaker, audio, consent, position="end", foreign_s=tail_s, foreign=span)
                    )
    return trials


def share(trials: list[Trial], refused: Callable[[Trial], bool]) -> str:
    """How many of ``trials`` ``refused`` refuses, as a count and a share."""
    count = sum(refused(t) for t in trials)
    return f"{count}/{len(trials)} {count / len(trials):.1%}" if trials else "-"


def below(trials: list[Trial], lowest: Callable[[Trial], float], threshold: float) -> str:
    """How many of ``trials`` have a window under ``threshold`` (``lowest``: their lowest window)."""
    return share(trials, lambda t: lowest(t) < threshold)


def window_threshold(trials: list[Trial], lowest: Callable[[Trial], float]) -> float:
    """The `GENUINE_QUANTILE` quantile of the genuine samples' lowest window, rounded down to two decimals."""
    scores = [lowest(t) for t in trials if t.kind == "genuine"]
    return math.floor(float(np.quantile(scores, GENUINE_QUANTILE)) * 100) / 100


def boundary_errors(trials: list[Trial], named: Callable[[Trial], tuple[tuple[float, float], ...]]) -> list[float]:
    """How far the seconds a refusal names lie from where the other speaker really starts and ends (the edges
    inside the sample), over the splices of 3 s or more refused with one stretch named."""
    errors = []
    for t in trials:
        if t.kind != "splice" or t.foreign is None or t.foreign_s < 3.0 or len(named(t)) != 1:
            continue
        (start, end), (true_start, true_end) = named(t)[0], t.foreign
        if t.position != "beginning":
            errors.append(abs(start - true_start))
        if t.position != "end":
            errors.append(abs(end - true_end))
    return errors


#: The rules judged in the tables: the whole-sample rule alone, and the two window rules at the published
#: thresholds (with a consent: the whole sample or any window; the checkbox: a window unlike the rest).
RULES: list[tuple[str, Callable[[Trial], bool]]] = [
    (f"whole sample < {THRESHOLD}", lambda t: t.whole < THRESHOLD),
    ("whole, or a window unlike the consent", lambda t: t.whole < THRESHOLD or bool(t.unlike)),
    ("a window unlike the rest (checkbox)", lambda t: bool(t.second)),
]


def table(trials: list[Trial]) -> list[tuple[str, list[Trial]]]:
    """The rows of a table: genuine samples, splices by length and by place, the evaluator's case."""
    spliced = [t for t in trials if t.kind == "splice"]
    longer = [t for t in spliced if t.foreign_s >= 3.0]
    tails = [t for t in trials if t.kind == "tail"]
    return [
        ("genuine samples", [t for t in trials if t.kind == "genuine"]),
        *[(f"{s:g} s of another speaker, anywhere", [t for t in spliced if t.foreign_s == s]) for s in FOREIGN_S],
        *[(f"3 s or more, at the {p}", [t for t in longer if t.position == p]) for p in POSITIONS],
        ("3 s or more, anywhere", longer),
        *[(f"4 s of the speaker, then {s:g} s of another", [t for t in tails if t.foreign_s == s]) for s in TAIL_S],
    ]


def splices(clips: list[Clip], consents: int, *, held_out_only: bool = False) -> list[str]:
    """Judge genuine samples and splices of the tuning and the held-out speakers, print each window rule's
    threshold on the tuning ones and the figures of both; return the verdicts on the held-out speakers. With
    ``held_out_only``, the held-out speakers' trials alone (the same trials: each group has its own seed)."""
    groups = {"held-out speakers": splice_trials([c for c in clips if c.held_out], consents, seed=79)}
    if not held_out_only:
        tuning = splice_trials([c for c in clips if not c.held_out], consents, seed=78)
        groups = {"tuning speakers": tuning, **groups}
        print(
            f"window thresholds: the tuning speakers' genuine samples' {GENUINE_QUANTILE:.1%} quantile of their "
            "lowest window, rounded down"
        )
        for rule, lowest, published in (
            ("against the consent", lambda t: t.lowest, REFERENCE_THRESHOLD),
            ("against the rest of the sample", lambda t: t.lowest_self, SELF_THRESHOLD),
        ):
            print(f"  {rule}: {window_threshold(tuning, lowest):.2f} (published: {published})")
    verdicts = []
    for label, trials in groups.items():
        genuine = [t for t in trials if t.kind == "genuine"]
        print()
        print(
            f"{label}: {len({t.speaker for t in trials})} speakers, {len(genuine)} genuine samples "
            f"({min(t.seconds for t in genuine):.0f}-{max(t.seconds for t in genuine):.0f} s), "
            f"{sum(t.kind == 'splice' for t in trials)} splices, {sum(t.kind == 'tail' for t in trials)} of 4 s then "
            "another speaker"
        )
        print(f"{'refused':44}" + "".join(f"{name:>38}" for name, _ in RULES))
        rows = table(trials)
        for row, chosen_trials in rows:
            print(f"  {row:42}" + "".join(f"{share(chosen_trials, refused):>38}" for _, refused in RULES))
        longer = dict(rows)["3 s or more, anywhere"]
        for rule, lowest, published in (
            ("against the consent", lambda t: t.lowest, REFERENCE_THRESHOLD),
            ("with no consent", lambda t: t.lowest_self, SELF_THRESHOLD),
        ):
            margins = [
                f"{published + step:.2f}: {below(genuine, lowest, published + step)} genuine, "
                f"{below(longer, lowest, published + step)} of 3 s+"
                for step in (-0.02, 0.0, 0.02)
            ]
            print(f"  {rule}, windows alone at " + "; ".join(margins))
        for rule, named in (("against the consent", lambda t: t.unlike), ("with no consent", lambda t: t.second)):
            errors = boundary_errors(trials, named)
            if errors:
                print(
                    f"  {rule}, the seconds named lie {statistics.median(errors):.2f} s from the other speaker's "
                    f"true edge (median; 95 % within {float(np.quantile(errors, 0.95)):.2f} s; {len(errors)} edges)"
                )
        if label.startswith("held"):
            for (rule, refused), wanted in zip(RULES[1:], ("against the consent", "with no consent"), strict=True):
                caught = sum(map(refused, longer)) / len(longer)
                wrong = sum(map(refused, genuine)) / len(genuine)
                verdicts.append(
                    f"{label}, {wanted} ({rule}): splices of 3 s or more refused {caught:.1%} "
                    f"({'meets' if caught >= TARGET_REFUSED else 'MISSES'} {TARGET_REFUSED:.0%}), genuine samples "
                    f"refused {wrong:.1%} ({'meets' if wrong <= TARGET_GENUINE else 'MISSES'} {TARGET_GENUINE:.0%})"
                )
    return verdicts


def encoders_of(ge2e_wheel: Path | None) -> dict[str, Callable[[F32], F32 | None]]:
    """The encoders measured: voicegate's (int8), the same graph in float32, and GE2E when its wheel is given."""
    float32 = Encoder(weights.load(weights.locate()), quantized=False)

    def float_print(samples: F32) -> F32 | None:
        if features.speech(samples).size < features.MIN_SPEECH_SAMPLES:
            return None
        return float32.embed(features.normalised(features.fbanks(samples))[None])[0]

    def int8_print(samples: F32) -> F32 | None:
        made = voiceprint(samples, features.RATE)
        return None if made is None else made.vector

    found: dict[str, Callable[[F32], F32 | None]] = {"ECAPA int8 (voicegate)": int8_print, "ECAPA float32": float_print}
    if ge2e_wheel is not None:
        found["GE2E (before)"] = GE2E(ge2e_wheel).voiceprint
    return found


def printed(clips: list[Clip], encoders: dict[str, Callable[[F32], F32 | None]]) -> dict[str, dict[str, F32]]:
    """Every encoder's print of every clip that holds speech enough for all of them."""
    prints: dict[str, dict[str, F32]] = {name: {} for name in encoders}
    for clip in clips:
        made = {name: make(clip.samples) for name, make in encoders.items()}
        if any(vector is None for vector in made.values()):
            print(f"{clip.name} ({clip.seconds:.1f} s) holds too little speech for a voiceprint: left out")
            continue
        for name, vector in made.items():
            assert vector is not None
            prints[name][clip.name] = vector
    return prints


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="the speech, as bench/voiceprint_corpus.py put it together")
    parser.add_argument("--ge2e-wheel", type=Path, help="the resemblyzer 0.1.4 wheel, for GE2E's figures beside")
    parser.add_argument("--core", type=int, default=None, help="the core to run on (default: the last one)")
    parser.add_argument("--consents", type=int, default=2, help="consents per speaker in the splice trials")
    parser.add_argument("--no-splices", action="store_true", help="the encoders' figures alone")
    parser.add_argument(
        "--held-out-splices", action="store_true", help="the held-out speakers' splice trials alone, nothing else"
    )
    args = parser.parse_args(argv)
    core = max(os.sched_getaffinity(0)) if args.core is None else args.core
    os.sched_setaffinity(0, {core})
    clips = read_clips(args.corpus)
    if args.held_out_splices:
        for verdict in splices(clips, args.consents, held_out_only=True):
            print(verdict)
        return 0
    started = time.perf_counter()
    shared_encoder()
    load_ms = (time.perf_counter() - started) * 1000
    encoders = encoders_of(args.ge2e_wheel)
    print(
        f"voiceprint bench: {len(clips)} recordings of {len({c.speaker for c in clips})} speakers, "
        f"{sum(c.seconds for c in clips):.0f} s, from {args.corpus}, on core {core}"
    )
    print(f"first use: weights read and checked (sha256), ONNX graph written and loaded in {load_ms:.0f} ms")
    print()
    measured = speed(clips, encoders)
    print(f"CPU ms per {CLIP_S:g} s clip, end to end, one core (median of the held-out recordings' first {CLIP_S:g} s)")
    for name, ms in measured.items():
        print(f"  {name:32}{ms:8.1f}")
    prints = printed(clips, encoders)
    clips = [c for c in clips if c.name in prints["ECAPA int8 (voicegate)"]]
    print()
    ours = quality(clips, prints)["ECAPA int8 (voicegate)"]
    chosen = calibration_threshold(pairs([c for c in clips if not c.held_out], prints["ECAPA int8 (voicegate)"]))
    rounded = round(chosen, 2)
    print(
        f"THRESHOLD at the tuning speakers' equal-error point: {chosen:.3f}, rounded {rounded} (published: {THRESHOLD})"
    )
    eer, p999, ms = equal_error(ours)[0], float(np.quantile(ours.different, 0.999)), measured["ECAPA int8 (voicegate)"]
    verdicts = [
        f"held-out EER {eer:.2%} ({'meets' if eer <= TARGET_EER else 'MISSES'} {TARGET_EER:.1%}), different-speaker "
        f"p99.9 {p999:.3f} ({'meets' if p999 <= TARGET_P999 else 'MISSES'} {TARGET_P999}), {ms:.0f} ms CPU per "
        f"{CLIP_S:g} s clip ({'meets' if ms <= TARGET_MS_PER_CLIP else 'MISSES'} {TARGET_MS_PER_CLIP:.0f})"
    ]
    if not args.no_splices:
        print()
        verdicts += splices(clips, args.consents)
    print()
    for verdict in verdicts:
        print(verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
