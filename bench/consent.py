"""Benchmark: the spoken consent check (backend/consents/phrase.py), its speed and how it separates.

    python bench/consent.py [--speech DIR] [--repeat 5] [--core N]

Pinned to one core (the first it may use, or ``--core``). Speed: wall-clock and CPU time of ``check_phrase``
on a 6 s recording (the first 6 s of hibari reading a consent phrase) and on the whole phrase, cold (a fresh
process: the import, the first decoder and the first check) and warm (the median of ``--repeat`` calls).
Beside them, measured in the same run on the same audio, two baselines made with pocketsphinx directly: the
decode alone (a decoder made beforehand, the phrase's word loop already active, the audio already 16 kHz
16-bit PCM: what the check adds is its resampling, VAD, levelling, grammar and alignment), and pocketsphinx's
free dictation (its en-us n-gram model, no grammar): what recognition costs without the phrase to constrain it.
Target (issue 46): <= 1 s wall for a 6 s recording.

Separation, on natural speech: hibari (the `local` provider's voice) read as it is, 30% faster, and moved
towards each speaker of the shared LibriSpeech clips by the `local` engine (8 voices), each reading 3 consent
phrases (names drawn from a list, codes at random, seeded), the same 3 phrases with another code (replays) and
4 wrong sentences; and every LibriSpeech clip in ``--speech`` (real speech that is not the phrase), checked
against a phrase of its own. Half of it sets the thresholds (hibari as it is, faster, and moved to speakers
1688, 1998 and 367, and those speakers' clips); the other half is held out. For each half and kind: word
accuracy (min / mean / max), the code heard, and what ``refusal`` says at the module's thresholds; then the
thresholds the calibration half gives beside the module's: word accuracy halfway between the highest impostor
(a wrong sentence or a LibriSpeech clip with enough speech) and the lowest right phrase, to the nearest 0.05;
speech, half the least a right phrase held (read 30% faster), rounded down to the half second: a reading with
less has left out about half the phrase.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pocketsphinx

from backend.consents.phrase import (
    DIGIT_WORDS,
    EXTRA_WORDS,
    MIN_SPEECH_SECONDS,
    MIN_WORD_ACCURACY,
    Phrase,
    PhraseCheck,
    check_phrase,
    phrase_for,
    refusal,
    words,
)
from backend.providers.local.engine import render
from backend.providers.local.hibari_voice import HibariVoice
from backend.providers.local.profile import measure

SPEECH = Path("/work/shared/speech/librispeech")
#: The speakers whose clips (and whose moved hibari) set the thresholds; the others are held out.
CALIBRATION_SPEAKERS = ("1688", "1998", "367")
NAMES = (
    "Jane Doe",
    "Kathleen Dang",
    "Ana Simão",
    "Filippo Gioachin",
    "Ashwin Jain",
    "Sonja Winam",
    "Mei Chen",
    "Oluwaseun Adeyemi",
    "Björn Lindqvist",
    "María José García",
)
WRONG = (
    "The birch canoe slid on the smooth planks, and the boy was there when the sun rose.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "We will meet at the station tomorrow morning, before the train to the city leaves.",
    "I do not want my voice to be copied by anyone, so please delete every recording now.",
    "The weather today is cold and grey, with rain expected late in the afternoon.",
    "Hello, my name is Jane and I am reading this sentence for a test of the system.",
    "Four score and seven years ago our fathers brought forth on this continent a new nation.",
    "My code is one, two, three, four, and I type it into the page every morning.",
)
PHRASES_PER_VOICE = 3
WRONG_PER_VOICE = 4
RECORDING_S = 6.0
#: Issue 46's target for the check of a ``RECORDING_S`` recording, wall-clock.
TARGET_MS = 1000.0
KINDS = ("right", "replay", "wrong", "librispeech")


@dataclass(frozen=True)
class Case:
    """One recording checked against one phrase."""

    split: str
    kind: str
    voice: str
    check: PhraseCheck


def pin(core: int | None) -> int:
    """Pin this process to one core and return it."""
    chosen = core if core is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {chosen})
    return chosen


def read_clips(folder: Path) -> dict[str, list[tuple[str, np.ndarray, int]]]:
    """Each speaker's clips: (file name, mono float32 samples, rate), by speaker folder."""
    clips: dict[str, list[tuple[str, np.ndarray, int]]] = {}
    for path in sorted(folder.glob("*/*.flac")):
        samples, rate = soundfile.read(path, dtype="float32")
        clips.setdefault(path.parent.name, []).append((path.name, samples, rate))
    return clips


def voices(clips: dict[str, list[tuple[str, np.ndarray, int]]]) -> list[tuple[str, str, Callable[[str], np.ndarray]]]:
    """(split, name, speak) for hibari as it is, 30% faster, and moved towards each speaker's first clip."""
    hibari = HibariVoice.shared()
    out: list[tuple[str, str, Callable[[str], np.ndarray]]] = [
        ("calibration", "hibari", hibari.speak),
        ("calibration", "hibari x1.3", lambda text: hibari.speak(text, 1.3)),
    ]
    for speaker, speaker_clips in clips.items():
        _, samples, rate = speaker_clips[0]
        profile = measure(samples.astype(np.float64), rate)
        split = "calibration" if speaker in CALIBRATION_SPEAKERS else "held out"
        out.append((split, f"moved to {speaker}", lambda text, p=profile: render(text, p)[0].astype(np.float32)))
    return out


def spoken_cases(clips: dict[str, list[tuple[str, np.ndarray, int]]], rng: np.random.Generator) -> list[Case]:
    """Right phrases, replays and wrong sentences in every voice."""
    cases = []
    rate = HibariVoice.sample_rate
    for index, (split, name, speak) in enumerate(voices(clips)):
        for k in range(PHRASES_PER_VOICE):
            subject = NAMES[(index * PHRASES_PER_VOICE + k) % len(NAMES)]
            code, other = (
                "".join(str(d) for d in rng.integers(0, 10, 4)),
                "".join(str(d) for d in rng.integers(0, 10, 4)),
            )
            phrase = phrase_for(subject, code)
            cases.append(Case(split, "right", name, check_phrase(speak(phrase.text), rate, phrase)))
            replay = phrase_for(subject, other)
            cases.append(Case(split, "replay", name, check_phrase(speak(replay.text), rate, phrase)))
        for k in range(WRONG_PER_VOICE):
            phrase = phrase_for(NAMES[index % len(NAMES)], "".join(str(d) for d in rng.integers(0, 10, 4)))
            sentence = WRONG[(index * WRONG_PER_VOICE + k) % len(WRONG)]
            cases.append(Case(split, "wrong", name, check_phrase(speak(sentence), rate, phrase)))
    return cases


def clip_cases(clips: dict[str, list[tuple[str, np.ndarray, int]]], rng: np.random.Generator) -> list[Case]:
    """Every LibriSpeech clip checked against a phrase."""
    cases = []
    for speaker, speaker_clips in clips.items():
        split = "calibration" if speaker in CALIBRATION_SPEAKERS else "held out"
        for index, (_, samples, rate) in enumerate(speaker_clips):
            phrase = phrase_for(NAMES[index % len(NAMES)], "".join(str(d) for d in rng.integers(0, 10, 4)))
            cases.append(Case(split, "librispeech", f"speaker {speaker}", check_phrase(samples, rate, phrase)))
    return cases


def timing_recording() -> tuple[np.ndarray, int, Phrase]:
    """hibari reading a consent phrase: the whole recording, its rate and the phrase."""
    phrase = phrase_for("Jane Doe", "4719")
    return HibariVoice.shared().speak(phrase.text), HibariVoice.sample_rate, phrase


def timed(work: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``repeat`` runs of ``work``, after one untimed run."""
    work()
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def bare_decoders(phrase: Phrase) -> dict[str, pocketsphinx.Decoder]:
    """pocketsphinx decoders made beforehand: one with the phrase's word loop active (as the check makes it), one
    with the wheel's en-us n-gram model (free dictation)."""
    model = {
        "hmm": pocketsphinx.get_model_path("en-us/en-us"),
        "dict": pocketsphinx.get_model_path("en-us/cmudict-en-us.dict"),
    }
    loop = pocketsphinx.Decoder(pocketsphinx.Config(**model, lm=None, bestpath=False, loglevel="ERROR"))
    for word, phones in EXTRA_WORDS.items():
        loop.add_word(word, phones, True)
    vocabulary = sorted({w for w in words(phrase.text) if w is not None and loop.lookup_word(w)} | set(DIGIT_WORDS))
    arcs = [(0, 1, 1.0 / len(vocabulary), word) for word in vocabulary] + [(1, 0, 1.0)]
    loop.add_fsg("phrase", loop.create_fsg("phrase", 0, 1, arcs))
    loop.activate_search("phrase")
    dictation = pocketsphinx.Decoder(
        pocketsphinx.Config(**model, lm=pocketsphinx.get_model_path("en-us/en-us.lm.bin"), loglevel="ERROR")
    )
    return {"decode alone (word loop)": loop, "free dictation (n-gram)": dictation}


def decode(decoder: pocketsphinx.Decoder, pcm: bytes) -> str:
    """The words ``decoder`` hears in ``pcm`` (16 kHz, 16-bit), in one utterance."""
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return "" if hypothesis is None else str(hypothesis.hypstr)


def warm(repeat: int) -> list[tuple[str, float, float, float]]:
    """(what, seconds of audio, median wall s, median CPU s) of warm calls: the check on 6 s and on the whole
    phrase, and the two baselines on the same 6 s."""
    audio, rate, phrase = timing_recording()
    six = audio[: int(RECORDING_S * rate)]
    rows = []
    for label, samples in (("check, 6 s recording", six), ("check, whole phrase", audio)):
        wall, cpu = timed(lambda samples=samples: check_phrase(samples, rate, phrase), repeat)
        rows.append((label, samples.size / rate, wall, cpu))
    at_16k = resample_poly(six.astype(np.float64), 2, 3)  # hibari's 24 kHz to the model's 16 kHz
    pcm = np.clip(at_16k * 32767.0, -32768, 32767).astype("<i2").tobytes()
    for label, decoder in bare_decoders(phrase).items():
        wall, cpu = timed(lambda decoder=decoder: decode(decoder, pcm), repeat)
        rows.append((f"baseline: {label}", RECORDING_S, wall, cpu))
    return rows


#: Run in a fresh process: the voice is loaded and the recording made first, then the clock runs over the import
#: of the module (pocketsphinx, the audio measures) and its first check (a decoder made, the grammar, the search).
COLD = """
import json, sys, time
from backend.providers.local.hibari_voice import HibariVoice
text, seconds = sys.argv[1], float(sys.argv[2])
audio = HibariVoice.shared().speak(text)[: int(seconds * HibariVoice.sample_rate)]
wall, cpu = time.perf_counter(), time.process_time()
from backend.consents.phrase import phrase_for, check_phrase
imported = (time.perf_counter() - wall, time.process_time() - cpu)
wall, cpu = time.perf_counter(), time.process_time()
check_phrase(audio, HibariVoice.sample_rate, phrase_for("Jane Doe", "4719"))
print(json.dumps({"import": imported, "first": (time.perf_counter() - wall, time.process_time() - cpu)}))
"""


def cold(core: int) -> dict[str, list[float]]:
    """The cold figures, from a child process on ``core``."""
    child = subprocess.run(
        ["taskset", "-c", str(core), sys.executable, "-c", COLD, phrase_for("Jane Doe", "4719").text, str(RECORDING_S)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    figures: dict[str, list[float]] = json.loads(child.stdout.strip().splitlines()[-1])
    return figures


def summary(cases: list[Case]) -> None:
    """Per split and kind: word accuracy, code heard, refusals at the module's thresholds."""
    print(
        f"{'split':12} {'kind':12} {'n':>3}  {'word accuracy min / mean / max':>30}  {'code heard':>10}  "
        f"{'accepted':>8}  refusals"
    )
    for split in ("calibration", "held out"):
        for kind in KINDS:
            group = [case.check for case in cases if case.split == split and case.kind == kind]
            if not group:
                continue
            accuracy = [check.word_accuracy for check in group]
            refusals = Counter(str(refusal(check)) for check in group if refusal(check) is not None)
            print(
                f"{split:12} {kind:12} {len(group):3d}  "
                f"{min(accuracy):8.2f} / {statistics.mean(accuracy):4.2f} / {max(accuracy):4.2f}        "
                f"{sum(check.code_heard for check in group):5d}/{len(group):<4d}  "
                f"{sum(refusal(check) is None for check in group):8d}  "
                + ", ".join(f"{reason} {count}" for reason, count in sorted(refusals.items()))
            )


def thresholds(cases: list[Case]) -> None:
    """What the calibration half gives, beside the module's thresholds."""
    calibration = [case for case in cases if case.split == "calibration"]
    right = [case.check for case in calibration if case.kind == "right"]
    impostors = [
        case.check
        for case in calibration
        if case.kind in {"wrong", "librispeech"} and case.check.speech_seconds >= MIN_SPEECH_SECONDS
    ]
    lowest, highest = min(c.word_accuracy for c in right), max(c.word_accuracy for c in impostors)
    given = round((lowest + highest) / 2 * 20) / 20
    fastest = min(c.speech_seconds for c in right)
    print(
        f"calibration: right phrases' word accuracy from {lowest:.2f}, impostors' (wrong sentences, LibriSpeech, "
        f"with enough speech) up to {highest:.2f}: halfway, to the nearest 0.05: {given:.2f} "
        f"(MIN_WORD_ACCURACY = {MIN_WORD_ACCURACY})"
    )
    replays = [c.check for c in calibration if c.kind == "replay"]
    print(
        f"calibration: replays' word accuracy up to {max(c.word_accuracy for c in replays):.2f}, their code heard "
        f"in {sum(c.code_heard for c in replays)} of {len(replays)}; right phrases' code heard in "
        f"{sum(c.code_heard for c in right)} of {len(right)}"
    )
    print(
        f"calibration: right phrases hold {fastest:.1f} s of speech or more: half, rounded down to the half second: "
        f"{math.floor(fastest / 2 * 2) / 2:.1f} (MIN_SPEECH_SECONDS = {MIN_SPEECH_SECONDS})"
    )


def main() -> None:
    """Measure, then print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speech", type=Path, default=SPEECH, help="LibriSpeech speaker folders of FLAC clips")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--core", type=int, default=None)
    args = parser.parse_args()
    core = pin(args.core)
    figures = cold(core)
    rows = warm(args.repeat)
    print(f"consent check bench, on core {core}")
    print(f"{'':44} {'audio s':>8} {'wall ms':>8} {'CPU ms':>8}")
    print(f"{'cold: import':44} {'':>8} {figures['import'][0] * 1e3:8.0f} {figures['import'][1] * 1e3:8.0f}")
    print(
        f"{'cold: first check, 6 s':44} {RECORDING_S:8.1f} {figures['first'][0] * 1e3:8.0f} "
        f"{figures['first'][1] * 1e3:8.0f}"
    )
    for label, seconds, wall, cpu in rows:
        print(f"{'warm: ' + label:44} {seconds:8.1f} {wall * 1e3:8.0f} {cpu * 1e3:8.0f}")
    check_ms = rows[0][2] * 1e3
    verdict = "meets" if check_ms <= TARGET_MS else "MISSES"
    print(f"the check of a 6 s recording, warm: {check_ms:.0f} ms wall, which {verdict} the target of {TARGET_MS:.0f}")
    print()
    rng = np.random.default_rng(46)
    clips = read_clips(args.speech)
    cases = spoken_cases(clips, rng) + clip_cases(clips, rng)
    summary(cases)
    print()
    thresholds(cases)


if __name__ == "__main__":
    main()
