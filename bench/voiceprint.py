"""Benchmark: voiceprints (backend/voiceprint) on real speech, the network as voicegate runs it (an ONNX graph in
onnxruntime) beside the same network in numpy (devkit/voiceprint_numpy.py), measured in the same run on one core.

    python bench/voiceprint.py [--speech DIR] [--repeat 3] [--core N]

Speed: CPU milliseconds per second of audio over every clip, the process pinned to one core with OpenBLAS on
one thread (onnxruntime is given one too), median of ``--repeat`` passes after a warm-up. Target:
at most 15 ms per second of audio.

Quality: on the LibriSpeech test-other clips (CC BY 4.0; 6 speakers x 10 utterances; `--speech`, by default the clips
VOICEGATE_SPEECH_CLIPS points to), every pair of clips scored by cosine, same speaker against different speakers: the
means, the equal-error rate (where false accepts and false rejects cross, interpolated) and the errors at the published
`THRESHOLD`. The threshold is calibrated here, on held-out data: chosen at the equal-error point of the utterances
numbered 0-4 of every speaker (where the larger of the two rates is lowest, the middle of that range, rounded to two
decimals), and judged on utterances 5-9, which had no say in it. Each 3-speaker subset's own equal-error threshold is
printed too, to show how far a threshold set on three speakers moves. Target: EER at most 1 %.

Splices: another speaker's speech put into a sample of the consenting one, judged window by window
(`backend.voiceprint.windows`) beside the whole-sample rule voicegate had before (the sample's voiceprint
against the consent's at `THRESHOLD`), in the same run. Made of the same clips, split the same way: for each
speaker, consents of 8-20 s of their clips, genuine samples (5-30 s) of their other clips, and splices: 8-24 s
of their other clips with 1.5, 3, 4 or 8 s of another speaker's speech at the beginning, in the middle or at
the end; and the outside evaluator's case, 4 s of the speaker followed by 4-30 s of another. Each half of the
clips (utterances 0-4, and 5-9) makes its own trials from its own clips alone, and gives each window rule a
threshold (the 0.5 % quantile of its genuine samples' lowest window, rounded down): the lower of the two is
published and judged on the other half, against the consent (`unlike`) and with none (`second_voice`, the
checkbox). Targets, on both halves: 3 s or more of another speaker refused in at least 95 % of splices,
genuine samples refused in at most 1 %; the whole check at most 15 ms of CPU per second of audio.
"""

from __future__ import annotations

import argparse
import itertools
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
from devkit.voiceprint_numpy import NumpyEncoder  # noqa: E402

F32 = npt.NDArray[np.float32]
from devkit.clips import LIBRISPEECH  # noqa: E402

SPEECH = LIBRISPEECH  # VOICEGATE_SPEECH_CLIPS names another folder
TARGET_MS_PER_S = 15.0
TARGET_EER = 0.01
#: Utterances numbered below this calibrate the threshold; the others are held out.
CALIBRATION_UTTERANCES = 5
#: How long a consent recording is taken to be: the clip nearest it is timed alone ("one 6.0 s clip ...").
CONSENT_S = 6.0
#: Splices: the lengths of another speaker's speech put in, where, and the evaluator's case (4 s of the
#: speaker, then this much of another).
FOREIGN_S = (1.5, 3.0, 4.0, 8.0)
POSITIONS = ("beginning", "middle", "end")
TAIL_S = (4.0, 8.0, 12.0, 20.0, 30.0)
GENUINE_S = (5.0, 10.0, 15.0, 20.0, 30.0)
#: Genuine samples cut from each consent's other clips at each length (one when they are no longer).
GENUINE_CUTS = 6
#: Consents per speaker whose other clips are spliced (genuine samples are cut for every consent).
SPLICE_CONSENTS = 2
#: The window thresholds' calibration: refuse at most this share of the calibration split's genuine samples.
GENUINE_QUANTILE = 0.005
TARGET_REFUSED = 0.95
TARGET_GENUINE = 0.01


@dataclass(frozen=True)
class Clip:
    """One utterance: its name, speaker, number among the speaker's utterances, and 16 kHz samples."""

    name: str
    speaker: str
    utterance: int
    samples: F32

    @property
    def seconds(self) -> float:
        """Its length."""
        return self.samples.size / features.RATE


def read_clips(folder: Path) -> list[Clip]:
    """The FLAC clips of ``folder``'s speaker folders (LibriSpeech names: speaker-chapter-utterance)."""
    clips = []
    for path in sorted(folder.glob("*/*.flac")):
        samples, rate = soundfile.read(path, dtype="float32")
        if rate != features.RATE:
            raise SystemExit(f"{path} is at {rate} Hz; the bench reads 16 kHz LibriSpeech clips")
        speaker, _chapter, utterance = path.stem.split("-")
        clips.append(Clip(path.stem, speaker, int(utterance), samples))
    if not clips:
        raise SystemExit(f"no FLAC clips in {folder}/*/")
    return clips


def print_with(network: Encoder | NumpyEncoder, samples: F32) -> F32 | None:
    """`voiceprint`'s steps with ``network``'s forward pass (the vector, or None without enough speech)."""
    kept = features.speech(features.mono_16k(samples, features.RATE))
    if kept.size < features.MIN_SPEECH_SAMPLES:
        return None
    mean = network.embed(features.partials(kept)).mean(axis=0)
    return np.asarray(mean / np.linalg.norm(mean), dtype=np.float32)


def cpu_ms_per_s(work: Callable[[], object], audio_s: float, repeat: int) -> float:
    """Median CPU milliseconds per second of audio of ``repeat`` runs of ``work`` after a warm-up run."""
    work()
    passes = []
    for _ in range(repeat):
        started = time.process_time()
        work()
        passes.append((time.process_time() - started) * 1000 / audio_s)
    return statistics.median(passes)


def speed(clips: list[Clip], numpy_net: NumpyEncoder, repeat: int) -> dict[str, tuple[float, float]]:
    """CPU ms per second of audio of each stage, numpy beside onnxruntime (the features are numpy for both)."""
    audio_s = sum(clip.seconds for clip in clips)
    batches = [features.partials(features.speech(features.mono_16k(c.samples, features.RATE))) for c in clips]
    feature_ms = cpu_ms_per_s(
        lambda: [features.partials(features.speech(features.mono_16k(c.samples, features.RATE))) for c in clips],
        audio_s,
        repeat,
    )
    return {
        "features (VAD, mel, partials)": (feature_ms, feature_ms),
        "network (LSTM, linear, batched)": (
            cpu_ms_per_s(lambda: [numpy_net.embed(batch) for batch in batches], audio_s, repeat),
            cpu_ms_per_s(lambda: [shared_encoder().embed(batch) for batch in batches], audio_s, repeat),
        ),
        "voiceprint, end to end": (
            cpu_ms_per_s(lambda: [print_with(numpy_net, c.samples) for c in clips], audio_s, repeat),
            cpu_ms_per_s(lambda: [voiceprint(c.samples, features.RATE) for c in clips], audio_s, repeat),
        ),
    }


def scores(names: set[str], prints: dict[str, F32]) -> tuple[list[float], list[float]]:
    """Cosines of every pair of ``names``: same speaker, different speakers."""
    same, different = [], []
    for a, b in itertools.combinations(sorted(names), 2):
        score = float(np.dot(prints[a], prints[b]))
        (same if a.split("-")[0] == b.split("-")[0] else different).append(score)
    return same, different


def equal_error(same: list[float], different: list[float]) -> tuple[float, float]:
    """The equal-error rate and the cosine where it falls: false rejects (same below t) and false accepts
    (different at or above t) traced over every score as t, interpolated between the two t they cross at."""
    previous = None
    for t in sorted({*same, *different}):
        frr = sum(score < t for score in same) / len(same)
        far = sum(score >= t for score in different) / len(different)
        if frr >= far:
            if previous is None:
                return (frr + far) / 2, t
            t0, frr0, far0 = previous
            share = (far0 - frr0) / ((far0 - frr0) + (frr - far))  # where the two straight lines meet
            return far0 + share * (far - far0), t0 + share * (t - t0)
        previous = (t, frr, far)
    return 0.5, max(same)  # unreachable: at the highest score no different pair is accepted


def calibration_threshold(same: list[float], different: list[float]) -> float:
    """The cosine at the equal-error point: of the midpoints between neighbouring scores, those where the
    larger of the two error rates is lowest, and of them the middle one."""
    ordered = sorted({*same, *different})
    candidates = [(a + b) / 2 for a, b in itertools.pairwise(ordered)]
    worst = [
        max(sum(s < t for s in same) / len(same), sum(d >= t for d in different) / len(different)) for t in candidates
    ]
    return statistics.median([t for t, error in zip(candidates, worst, strict=True) if error == min(worst)])


def rates(same: list[float], different: list[float], threshold: float) -> str:
    """False rejects and false accepts at ``threshold``, as counts and shares."""
    rejects = sum(score < threshold for score in same)
    accepts = sum(score >= threshold for score in different)
    return (
        f"{rejects}/{len(same)} {rejects / len(same):.1%} / {accepts}/{len(different)} {accepts / len(different):.1%}"
    )


def quality(clips: list[Clip], prints: dict[str, dict[str, F32]]) -> None:
    """The pairs' figures on every clip, on the calibration clips and on the held-out ones, per network."""
    every = {c.name for c in clips}
    calibration = {c.name for c in clips if c.utterance < CALIBRATION_UTTERANCES}
    rows: list[tuple[str, Callable[[list[float], list[float]], str]]] = [
        ("pairs same / different", lambda s, d: f"{len(s)} / {len(d)}"),
        ("mean same speaker", lambda s, d: f"{statistics.mean(s):.3f}"),
        ("mean different speakers", lambda s, d: f"{statistics.mean(d):.3f}"),
        ("lowest same / highest different", lambda s, d: f"{min(s):.3f} / {max(d):.3f}"),
        ("EER (at cosine)", lambda s, d: "{:.2%} ({:.3f})".format(*equal_error(s, d))),
        (f"FRR / FAR at {THRESHOLD}", lambda s, d: rates(s, d, THRESHOLD)),
    ]
    print(f"{'pairs of clips, cosine':36}" + "".join(f"{name:>32}" for name in prints))
    for label, names in (
        ("all clips", every),
        (f"calibration: utterances 0-{CALIBRATION_UTTERANCES - 1}", calibration),
        (f"held out: utterances {CALIBRATION_UTTERANCES}-9", every - calibration),
    ):
        print(label)
        for row, cell in rows:
            print(f"  {row:34}" + "".join(f"{cell(*scores(names, of)):>32}" for of in prints.values()))
    chosen = calibration_threshold(*scores(calibration, prints["onnxruntime"]))
    print(
        f"threshold at the calibration clips' equal-error point: {chosen:.3f}, rounded {round(chosen, 2)} "
        f"(THRESHOLD: {THRESHOLD})"
    )
    subsets = [
        calibration_threshold(*scores({c.name for c in clips if c.speaker in three}, prints["onnxruntime"]))
        for three in itertools.combinations(sorted({c.speaker for c in clips}), 3)
    ]
    print(
        f"each 3-speaker subset's own equal-error threshold: {min(subsets):.3f} to {max(subsets):.3f} "
        f"(median {statistics.median(subsets):.3f}, {len(subsets)} subsets)"
    )
    eer = equal_error(*scores(every, prints["onnxruntime"]))[0]
    print(f"EER on all clips {eer:.2%}: {'meets' if eer <= TARGET_EER else 'MISSES'} the target of {TARGET_EER:.0%}")


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


def splice_trials(clips: list[Clip], utterances: range, consents: int, seed: int) -> list[Trial]:
    """Genuine samples and splices of ``clips``' utterances numbered in ``utterances`` (see the docstring)."""
    rng = random.Random(seed)  # noqa: S311 - a seeded choice of clips, not security
    speakers = sorted({c.speaker for c in clips})
    mine = {who: [c for c in clips if c.speaker == who and c.utterance in utterances] for who in speakers}
    trials = []
    for speaker, own in sorted(mine.items()):
        for round_ in range(consents):
            order = rng.sample(own, len(own))
            target, taken = rng.uniform(8.0, 20.0), 0
            while taken < len(order) - 2 and sum(c.seconds for c in order[:taken]) < target:
                taken += 1
            consent_audio = np.concatenate([c.samples for c in order[:taken]])[: 20 * features.RATE]
            consent = voiceprint(consent_audio, features.RATE)
            assert consent is not None
            pool = np.concatenate([c.samples for c in order[taken:]])
            for length in GENUINE_S:
                for _ in range(GENUINE_CUTS if pool.size > length * features.RATE else 1):
                    trials.append(judged("genuine", speaker, cut(rng, pool, length), consent))
            for other in sorted(mine):
                if other == speaker or round_ >= SPLICE_CONSENTS:
                    continue
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
    """A half's threshold: the `GENUINE_QUANTILE` quantile of its genuine samples' lowest window, rounded down
    to two decimals (toward refusing fewer)."""
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


#: The rules judged in the tables: the whole-sample rule alone (the baseline), and the two window rules at the published
#: thresholds (with a consent: the whole sample or any window; the checkbox: a window unlike the rest).
RULES: list[tuple[str, Callable[[Trial], bool]]] = [
    (f"whole sample < {THRESHOLD} (before)", lambda t: t.whole < THRESHOLD),
    ("whole, or a window unlike the consent", lambda t: t.whole < THRESHOLD or bool(t.unlike)),
    ("a window unlike the rest (checkbox)", lambda t: bool(t.second)),
]


def table(trials: list[Trial]) -> list[tuple[str, list[Trial]]]:
    """The rows of a half's table: genuine samples, splices by length and by place, the evaluator's case."""
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


def splices(clips: list[Clip], consents: int) -> list[str]:
    """Judge genuine samples and splices of both halves of the clips, print each rule's threshold on each half
    and the confusion figures beside the whole-sample rule's; return the verdicts on the targets."""
    halves = {
        f"utterances {first}-{first + 4}": splice_trials(clips, range(first, first + 5), consents, seed=56 + first)
        for first in (0, CALIBRATION_UTTERANCES)
    }
    print(
        f"window thresholds: each half's genuine samples' {GENUINE_QUANTILE:.1%} quantile of their lowest window, "
        "rounded down; the lower of the two is published and judged on the other half"
    )
    for rule, lowest, published in (
        ("against the consent", lambda t: t.lowest, REFERENCE_THRESHOLD),
        ("against the rest of the sample", lambda t: t.lowest_self, SELF_THRESHOLD),
    ):
        chosen = {label: window_threshold(trials, lowest) for label, trials in halves.items()}
        print(
            f"  {rule}: "
            + ", ".join(f"{value:.2f} on {label}" for label, value in chosen.items())
            + f"; the lower {min(chosen.values()):.2f} (published: {published})"
        )
    verdicts = []
    for label, trials in halves.items():
        genuine = [t for t in trials if t.kind == "genuine"]
        print()
        print(
            f"{label}: {len(genuine)} genuine samples ({min(t.seconds for t in genuine):.0f}-"
            f"{max(t.seconds for t in genuine):.0f} s), {sum(t.kind == 'splice' for t in trials)} splices, "
            f"{sum(t.kind == 'tail' for t in trials)} of 4 s then another speaker"
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
                for step in (-0.01, 0.0, 0.01)
            ]
            print(f"  {rule}, windows alone at " + "; ".join(margins))
        for rule, named in (("against the consent", lambda t: t.unlike), ("with no consent", lambda t: t.second)):
            errors = boundary_errors(trials, named)
            print(
                f"  {rule}, the seconds named lie {statistics.median(errors):.2f} s from the other speaker's true "
                f"edge (median; 95 % within {float(np.quantile(errors, 0.95)):.2f} s; {len(errors)} edges)"
            )
        shares = dict(rows)
        for (rule, refused), wanted in zip(RULES[1:], ("against the consent", "with no consent"), strict=True):
            caught = sum(map(refused, shares["3 s or more, anywhere"])) / len(shares["3 s or more, anywhere"])
            wrong = sum(map(refused, genuine)) / len(genuine)
            verdicts.append(
                f"{label}, {wanted} ({rule}): splices of 3 s or more refused {caught:.1%} "
                f"({'meets' if caught >= TARGET_REFUSED else 'MISSES'} {TARGET_REFUSED:.0%}), genuine samples "
                f"refused {wrong:.1%} ({'meets' if wrong <= TARGET_GENUINE else 'MISSES'} {TARGET_GENUINE:.0%})"
            )
    return verdicts


def check_cpu(clips: list[Clip], repeat: int) -> float:
    """CPU ms per second of audio of the whole speaker check: the partials' prints, the voiceprint, and both
    window rules against the consent and against the rest of the sample."""
    audio_s = sum(clip.seconds for clip in clips)
    reference = voiceprint(clips[0].samples, features.RATE)
    assert reference is not None

    def check() -> None:
        for clip in clips:
            prints = speech_prints(clip.samples, features.RATE)
            if prints is not None:
                prints.voiceprint()
                unlike(prints, reference)
                second_voice(prints)

    return cpu_ms_per_s(check, audio_s, repeat)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench and print its two tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speech", type=Path, default=SPEECH, help="LibriSpeech speaker folders of FLAC clips")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over every clip (median reported)")
    parser.add_argument("--core", type=int, default=None, help="the core to run on (default: the last one)")
    parser.add_argument("--consents", type=int, default=6, help="consents per speaker in each split's samples")
    args = parser.parse_args(argv)
    core = max(os.sched_getaffinity(0)) if args.core is None else args.core
    os.sched_setaffinity(0, {core})
    clips = read_clips(args.speech)

    started = time.perf_counter()
    shared_encoder()
    load_ms = (time.perf_counter() - started) * 1000
    numpy_net = NumpyEncoder(weights.load(weights.locate()))
    measured = speed(clips, numpy_net, args.repeat)
    consent = min(clips, key=lambda c: abs(c.seconds - CONSENT_S))
    started = time.process_time()
    voiceprint(consent.samples, features.RATE)
    consent_ms = (time.process_time() - started) * 1000
    prints: dict[str, dict[str, F32]] = {"numpy": {}, "onnxruntime": {}}
    for clip in clips:
        for name, network in (("numpy", numpy_net), ("onnxruntime", shared_encoder())):
            vector = print_with(network, clip.samples)
            if vector is None:
                raise SystemExit(f"{clip.name} holds too little speech for a voiceprint")
            prints[name][clip.name] = vector
    divergence = max(float(np.max(np.abs(prints["numpy"][n] - prints["onnxruntime"][n]))) for n in prints["numpy"])

    audio_s = sum(clip.seconds for clip in clips)
    print(f"voiceprint bench: {len(clips)} clips, {audio_s:.1f} s of speech from {args.speech}, on core {core}")
    print(f"first use: weights read and checked (sha256), ONNX graph written and loaded in {load_ms:.0f} ms")
    print()
    print(f"{'CPU ms per s of audio, one core':36}{'numpy':>32}{'onnxruntime':>32}")
    for stage, (numpy_ms, onnx_ms) in measured.items():
        print(f"{stage:36}{numpy_ms:32.2f}{onnx_ms:32.2f}")
    end_to_end = measured["voiceprint, end to end"][1]
    verdict = "meets" if end_to_end <= TARGET_MS_PER_S else "MISSES"
    print(f"voicegate runs onnxruntime: {end_to_end:.2f} ms per s, which {verdict} the target of {TARGET_MS_PER_S:.0f}")
    print(f"one {consent.seconds:.1f} s clip ({consent.name}), end to end: {consent_ms:.0f} ms CPU")
    print(f"numpy and onnxruntime voiceprints differ by at most {divergence:.1e} (largest element difference)")
    print()
    quality(clips, prints)
    print()
    check_ms = check_cpu(clips, args.repeat)
    verdict = "meets" if check_ms <= TARGET_MS_PER_S else "MISSES"
    print(
        f"the whole speaker check (prints of the partials, the voiceprint, both window rules): {check_ms:.2f} ms "
        f"CPU per s of audio, which {verdict} the target of {TARGET_MS_PER_S:.0f}"
    )
    print()
    for verdict in splices(clips, args.consents):
        print(verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
