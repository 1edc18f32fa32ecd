"""Benchmark: the spoken consent check (backend/consents/phrase.py), its speed and how it separates, in quiet and
in noise, beside the plain scoring it replaced (the baseline, described below), both measured in the same run.

    python bench/consent.py [--speech DIR] [--repeat 5] [--core N] [--draws 2] [--kinds right,replay,wrong,librispeech]
                            [--skip-speed]

Pinned to one core (the first it may use, or ``--core``). Speed: wall-clock and CPU time of ``check_phrase``
on a 6 s recording (the first 6 s of hibari reading a consent phrase) and on the whole phrase, cold (a fresh
process: the import, the first decoder and the first check) and warm (the median of ``--repeat`` calls).
Beside them, measured in the same run on the same audio, two baselines made with pocketsphinx directly: the
decode alone (a decoder made beforehand, the phrase's word loop already active, the audio already 16 kHz
16-bit PCM: what the check adds is its resampling, VAD, levelling, grammar and alignment), and pocketsphinx's
free dictation (its en-us n-gram model, no grammar): what recognition costs without the phrase to constrain it.
Target: <= 1 s wall for a 6 s recording. The check and the baseline are timed on the whole phrase read
in quiet and under 15 dB of babble (where the check hears a recording twice: as it came, then gated).

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

In noise: every reading and clip is put in a recording with 0.5-2 s of room before and after it (drawn
at random, seeded) and noise under all of it at a speech-to-noise ratio (the speech's active level, its VAD
frames, against the noise's RMS): white, pink, and babble of 6 talkers (one LibriSpeech speaker each, every clip
of the 6 shared speakers at the same level; the calibration half's babble is cut from their clips 0-4, the held
out half's from clips 5-9). Right readings at 40, 30, 20, 15 and 10 dB of each (``--draws`` noises each);
replays, wrong sentences and clips in quiet and at the noises of the targets below (white 15 dB, babble 20 and
15 dB) and babble 10 dB. Each recording is judged by the check and by the baseline: the plain scoring the check
replaced (pocketsphinx's default word insertion penalty, 0.65; the phrase aligned with every word heard, noise's
words before and after the speech counted as errors; one hearing, no cleaning), made here with pocketsphinx
directly. Targets: right readings verified >= 95 % at 20 dB babble and 15 dB white noise, >= 80 % at 15 dB
babble; impostors refused 100 %.

The languages beyond English, which Whisper hears, have a bench of their own: bench/consent_languages.py.

``--kinds`` judges only those kinds of reading: a shard, whose readings and noises are drawn as in the whole run, so
that shards of every kind add up to it (the thresholds' calibration and the targets need ``right``); ``--skip-speed``
leaves the speed part out.
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
from scipy.signal import lfilter

from backend.audio.measure import detect_speech, resample
from backend.consents import phrase as module
from backend.consents.phrase import (
    CODE_DIGITS,
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
from devkit.clips import LIBRISPEECH

SPEECH = LIBRISPEECH  # VOICEGATE_SPEECH_CLIPS names another folder
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
PHRASES_PER_VOICE = 5
WRONG_PER_VOICE = 4
RECORDING_S = 6.0
#: The target for the check of a ``RECORDING_S`` recording, wall-clock.
TARGET_MS = 1000.0
KINDS = ("right", "replay", "wrong", "librispeech")
NOISES = ("white", "pink", "babble")
SNRS_DB = (40, 30, 20, 15, 10)
#: Where impostors are put besides quiet: the noises of ``TARGETS``, and the worst babble.
IMPOSTOR_NOISES = (("white", 15), ("babble", 20), ("babble", 15), ("babble", 10))
#: The targets: the share of right readings verified under each noise.
TARGETS = {("babble", 20): 0.95, ("white", 15): 0.95, ("babble", 15): 0.80}
#: The room before and after the reading, each drawn in this range.
ROOM_S = (0.5, 2.0)
#: How the baseline (the plain scoring) decoded: pocketsphinx's default word insertion penalty.
BASELINE_WIP = 0.65
#: A pink-noise filter (Kellet's, -3 dB an octave within 0.05 dB over the audio band).
PINK_B = (0.049922035, -0.095993537, 0.050612699, -0.004408786)
PINK_A = (1.0, -2.494956002, 2.017265875, -0.522189400)


@dataclass(frozen=True)
class Case:
    """One recording checked against one phrase (in quiet: ``noise`` None)."""

    split: str
    kind: str
    voice: str
    check: PhraseCheck
    noise: str | None = None
    snr_db: int = 0
    baseline: PhraseCheck | None = None


@dataclass(frozen=True)
class Reading:
    """A recording to be checked in quiet and in noise: what is said (mono float32 at ``rate``) and the phrase."""

    split: str
    kind: str
    voice: str
    audio: np.ndarray
    rate: int
    phrase: Phrase


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


def spoken_readings(clips: dict[str, list[tuple[str, np.ndarray, int]]], rng: np.random.Generator) -> list[Reading]:
    """Right phrases, replays and wrong sentences in every voice."""
    readings = []
    rate = HibariVoice.sample_rate
    for index, (split, name, speak) in enumerate(voices(clips)):
        for k in range(PHRASES_PER_VOICE):
            subject = NAMES[(index * PHRASES_PER_VOICE + k) % len(NAMES)]
            code, other = (
                "".join(str(d) for d in rng.integers(0, 10, 4)),
                "".join(str(d) for d in rng.integers(0, 10, 4)),
            )
            phrase = phrase_for(subject, code)
            readings.append(Reading(split, "right", name, speak(phrase.text), rate, phrase))
            replay = phrase_for(subject, other)
            readings.append(Reading(split, "replay", name, speak(replay.text), rate, phrase))
        for k in range(WRONG_PER_VOICE):
            phrase = phrase_for(NAMES[index % len(NAMES)], "".join(str(d) for d in rng.integers(0, 10, 4)))
            sentence = WRONG[(index * WRONG_PER_VOICE + k) % len(WRONG)]
            readings.append(Reading(split, "wrong", name, speak(sentence), rate, phrase))
    return readings


def clip_readings(clips: dict[str, list[tuple[str, np.ndarray, int]]], rng: np.random.Generator) -> list[Reading]:
    """Every LibriSpeech clip, against a phrase."""
    readings = []
    for speaker, speaker_clips in clips.items():
        split = "calibration" if speaker in CALIBRATION_SPEAKERS else "held out"
        for index, (_, samples, rate) in enumerate(speaker_clips):
            phrase = phrase_for(NAMES[index % len(NAMES)], "".join(str(d) for d in rng.integers(0, 10, 4)))
            readings.append(Reading(split, "librispeech", f"speaker {speaker}", samples, rate, phrase))
    return readings


def talkers(clips: dict[str, list[tuple[str, np.ndarray, int]]], split: str) -> list[np.ndarray]:
    """Each shared speaker's clips 0-4 (the calibration half's babble) or 5-9 (the held out half's), end to end at
    16 kHz."""
    part = slice(0, 5) if split == "calibration" else slice(5, 10)
    return [
        np.concatenate([resample(samples, rate, module.RATE) for _, samples, rate in speaker_clips[part]])
        for speaker_clips in clips.values()
    ]


def noise_of(kind: str, size: int, rng: np.random.Generator, babble_from: list[np.ndarray]) -> np.ndarray:
    """``size`` samples of noise at unit RMS: white, pink, or babble (each talker at the same level, from a
    random place in their clips)."""
    if kind == "white":
        noise = rng.standard_normal(size)
    elif kind == "pink":
        noise = lfilter(PINK_B, PINK_A, rng.standard_normal(size + module.RATE))[module.RATE :]
    else:
        noise = np.zeros(size)
        for talker in babble_from:
            start = int(rng.integers(0, max(1, talker.size - size)))
            part = np.resize(talker[start : start + size], size).astype(np.float64)
            noise += part / np.sqrt(np.mean(np.square(part)))
    return noise / np.sqrt(np.mean(np.square(noise)))


def in_room(
    reading: Reading, noise: str | None, snr_db: int, rng: np.random.Generator, babble_from: list[np.ndarray]
) -> np.ndarray:
    """``reading`` at 16 kHz with room before and after it, and ``noise`` under it all at ``snr_db`` (the speech's
    active level against the noise's RMS); peaks at half of full scale."""
    speech = resample(np.asarray(reading.audio, dtype=np.float32), reading.rate, module.RATE)
    found = detect_speech(speech, module.RATE)
    active = found.power[found.frames] if found.frames.any() else found.power
    before, after = (rng.uniform(*ROOM_S, 2) * module.RATE).astype(int)
    recording = np.concatenate([np.zeros(before), speech.astype(np.float64), np.zeros(after)])
    if noise is not None:
        recording += (
            noise_of(noise, recording.size, rng, babble_from) * math.sqrt(np.mean(active)) / 10 ** (snr_db / 20)
        )
    return (recording / np.max(np.abs(recording)) * 0.5).astype(np.float32)


class Baseline:
    """The plain scoring the check replaced, for comparison in the same run: pocketsphinx with its default word
    insertion penalty, the phrase's word loop, every word heard aligned with the phrase (Levenshtein), one hearing
    and no cleaning."""

    def __init__(self) -> None:
        config = pocketsphinx.Config(
            hmm=pocketsphinx.get_model_path("en-us/en-us"),
            dict=pocketsphinx.get_model_path("en-us/cmudict-en-us.dict"),
            lm=None,
            bestpath=False,
            wip=BASELINE_WIP,
            loglevel="ERROR",
        )
        self._cmn = str(config["cmninit"])
        self._decoder = pocketsphinx.Decoder(config)
        for word, phones in EXTRA_WORDS.items():
            self._decoder.add_word(word, phones, True)
        # The module's dictionary look-ups (a word's pronunciations, which words are one to the ear), on this decoder.
        self._words = module._Recogniser.__new__(module._Recogniser)
        self._words._decoder = self._decoder
        self._words._pronunciations = {}

    def check(self, samples: np.ndarray, rate: int, phrase: Phrase) -> PhraseCheck:
        """What the baseline heard ``samples`` say against ``phrase``."""
        audio = module._mono_16k(samples, rate)
        speech_seconds = detect_speech(audio, module.RATE).seconds
        reference = module._reference(phrase, self._words)
        vocabulary = sorted({word for word in reference if word is not None} | set(DIGIT_WORDS))
        heard = self._recognise(audio, vocabulary) if speech_seconds > 0 else []
        errors, matched = levenshtein(reference, heard, self._words.same)
        scorable = sum(word is not None for word in reference)
        return PhraseCheck(
            word_accuracy=round(max(0.0, 1.0 - errors / scorable), 3),
            code_heard=all(p in matched for p in range(len(reference) - CODE_DIGITS, len(reference))),
            speech_seconds=round(speech_seconds, 2),
            heard=" ".join(heard),
        )

    def _recognise(self, audio: np.ndarray, vocabulary: list[str]) -> list[str]:
        decoder = self._decoder
        loop = [(0, 1, 1.0 / len(vocabulary), word) for word in vocabulary] + [(1, 0, 1.0)]
        decoder.add_fsg("phrase", decoder.create_fsg("phrase", 0, 1, loop))
        decoder.activate_search("phrase")
        decoder.set_cmn(self._cmn)
        decoder.start_utt()
        decoder.process_raw(module._pcm(audio), full_utt=True)
        decoder.end_utt()
        known = set(vocabulary)
        heard = [module._ALTERNATE.sub("", str(segment.word)) for segment in decoder.seg() or ()]
        return [word for word in heard if word in known]


def levenshtein(
    reference: list[str | None], heard: list[str], same: Callable[[str, str], bool]
) -> tuple[int, set[int]]:
    """The baseline's alignment: the fewest errors turning ``reference`` into all of ``heard`` (a None takes any
    words at no cost), and the positions one such alignment matches (a match taken over an error at a tie)."""
    rows, cols = len(reference), len(heard)
    cost = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    cost[0, :] = np.arange(cols + 1)
    for i in range(1, rows + 1):
        word = reference[i - 1]
        if word is None:
            cost[i, 0] = cost[i - 1, 0]
            for j in range(1, cols + 1):
                cost[i, j] = min(cost[i - 1, j], cost[i, j - 1])
            continue
        cost[i, 0] = cost[i - 1, 0] + 1
        for j in range(1, cols + 1):
            step = 0 if same(word, heard[j - 1]) else 1
            cost[i, j] = min(cost[i - 1, j - 1] + step, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    return int(cost[rows, cols]), _traced(cost, reference, heard, same)


def _traced(
    cost: np.ndarray, reference: list[str | None], heard: list[str], same: Callable[[str, str], bool]
) -> set[int]:
    """The positions of ``reference`` matched along one best path of ``levenshtein``'s ``cost``."""
    matched: set[int] = set()
    i, j = len(reference), len(heard)
    while i > 0:
        word = reference[i - 1]
        if word is None:
            if j > 0 and cost[i, j] == cost[i, j - 1]:
                j -= 1
            else:
                i -= 1
        elif j > 0 and cost[i, j] == cost[i - 1, j - 1] and same(word, heard[j - 1]):
            matched.add(i - 1)
            i, j = i - 1, j - 1
        elif j > 0 and cost[i, j] == cost[i - 1, j - 1] + 1:
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return matched


def judged(
    readings: list[Reading],
    clips: dict[str, list[tuple[str, np.ndarray, int]]],
    draws: int,
    seed: int,
    kinds: set[str],
) -> list[Case]:
    """Every reading of ``kinds`` checked by the check and by the baseline: in quiet, and in the noises its kind is
    put in. Each reading's noises are drawn by its place among all the readings, so that a shard of kinds judges
    the same recordings as the whole run."""
    baseline = Baseline()
    babble = {split: talkers(clips, split) for split in ("calibration", "held out")}
    cases = []
    for index, reading in enumerate(readings):
        if reading.kind not in kinds:
            continue
        rooms = [(None, 0)]
        if reading.kind == "right":
            rooms += [(noise, snr) for noise in NOISES for snr in SNRS_DB for _ in range(draws)]
        else:
            rooms += list(IMPOSTOR_NOISES)
        for room, (noise, snr) in enumerate(rooms):
            rng = np.random.default_rng([seed, index, room])
            audio = in_room(reading, noise, snr, rng, babble[reading.split])
            cases.append(
                Case(
                    reading.split,
                    reading.kind,
                    reading.voice,
                    check_phrase(audio, module.RATE, reading.phrase),
                    noise,
                    snr,
                    baseline.check(audio, module.RATE, reading.phrase),
                )
            )
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


def warm(repeat: int, clips: dict[str, list[tuple[str, np.ndarray, int]]]) -> list[tuple[str, float, float, float]]:
    """(what, seconds of audio, median wall s, median CPU s) of warm calls: the check on 6 s and on the whole
    phrase, in quiet and under 15 dB of babble, beside the plain scoring on the same recordings; and
    pocketsphinx's own two baselines on the same 6 s."""
    audio, rate, phrase = timing_recording()
    six = audio[: int(RECORDING_S * rate)]
    reading = Reading("held out", "right", "hibari", audio, rate, phrase)
    rng = np.random.default_rng(56)
    quiet = in_room(reading, None, 0, rng, [])
    babble = in_room(reading, "babble", 15, rng, talkers(clips, "held out"))
    plain = Baseline()
    rows = []
    for label, samples, at in (
        ("check, 6 s recording", six, rate),
        ("check, whole phrase", audio, rate),
        ("check, the phrase in a quiet room", quiet, module.RATE),
        ("plain scoring, the phrase in a quiet room", quiet, module.RATE),
        ("check, the phrase under babble at 15 dB", babble, module.RATE),
        ("plain scoring, the phrase under babble at 15 dB", babble, module.RATE),
    ):
        judge = plain.check if label.startswith("plain scoring") else check_phrase
        wall, cpu = timed(lambda samples=samples, at=at, judge=judge: judge(samples, at, phrase), repeat)
        rows.append((label, samples.size / at, wall, cpu))
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
    """Per split and kind, in quiet: word accuracy, code heard, refusals at the module's thresholds."""
    cases = [case for case in cases if case.noise is None]
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
    """What the calibration half gives, beside the module's thresholds: in quiet, and (word accuracy) with the
    right readings in every noise in which the check verifies most of them."""
    calibration = [case for case in cases if case.split == "calibration" and case.noise is None]
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
    if replays:  # a shard may leave them out
        print(
            f"calibration: replays' word accuracy up to {max(c.word_accuracy for c in replays):.2f}, their code "
            f"heard in {sum(c.code_heard for c in replays)} of {len(replays)}; right phrases' code heard in "
            f"{sum(c.code_heard for c in right)} of {len(right)}"
        )
    print(
        f"calibration: right phrases hold {fastest:.1f} s of speech or more: half, rounded down to the half second: "
        f"{math.floor(fastest / 2 * 2) / 2:.1f} (MIN_SPEECH_SECONDS = {MIN_SPEECH_SECONDS})"
    )
    noisy = [case for case in cases if case.split == "calibration" and case.noise is not None]
    impostors = [
        case.check
        for case in noisy
        if case.kind in {"wrong", "librispeech"} and case.check.speech_seconds >= MIN_SPEECH_SECONDS
    ]
    right = [case.check for case in noisy if case.kind == "right" and case.check.code_heard]
    accuracy = sorted(check.word_accuracy for check in right)
    loudest = f"{max(c.word_accuracy for c in impostors):.2f}" if impostors else "(none in this shard)"
    print(
        f"calibration, in noise: impostors' word accuracy up to {loudest}; right"
        f" readings whose code was heard: {len(right)}, their word accuracy from {accuracy[0]:.2f}"
        f" ({sum(a < MIN_WORD_ACCURACY for a in accuracy)} under MIN_WORD_ACCURACY = {MIN_WORD_ACCURACY})"
    )


def rooms(cases: list[Case]) -> None:
    """Per split and room: right readings verified, and impostors refused, by the check and by the baseline; then
    the targets, on the held out half."""
    print(
        f"{'split':12} {'room':12} {'right verified: check / plain':>32}  {'impostors refused: check / plain':>34}"
        f"  {'replays':>9}  {'check s/recording':>17}"
    )
    conditions = [(None, 0)] + [(noise, snr) for noise in NOISES for snr in SNRS_DB]
    for split in ("calibration", "held out"):
        for noise, snr in conditions:
            group = [case for case in cases if case.split == split and (case.noise, case.snr_db) == (noise, snr)]
            right = [case for case in group if case.kind == "right"]
            impostors = [case for case in group if case.kind != "right"]
            room = "quiet" if noise is None else f"{noise} {snr} dB"
            verified = sum(refusal(case.check) is None for case in right)
            before = sum(case.baseline is not None and refusal(case.baseline) is None for case in right)
            line = f"{split:12} {room:12} {verified:>13d}/{len(right):<3d} / {before:>3d}/{len(right):<6d}"
            if impostors:
                refused = sum(refusal(case.check) is not None for case in impostors)
                refused_before = sum(
                    case.baseline is not None and refusal(case.baseline) is not None for case in impostors
                )
                replays = [case for case in impostors if case.kind == "replay"]
                line += (
                    f"  {refused:>16d}/{len(impostors):<3d} / {refused_before:>3d}/{len(impostors):<6d}"
                    f"  {sum(refusal(case.check) is not None for case in replays):>4d}/{len(replays):<4d}"
                )
            print(line)
    print()
    for (noise, snr), share in TARGETS.items():
        held = [case for case in cases if case.split == "held out" and case.kind == "right" and case.noise == noise]
        held = [case for case in held if case.snr_db == snr]
        if not held:  # a shard without right readings
            continue
        verified = sum(refusal(case.check) is None for case in held) / len(held)
        before = sum(case.baseline is not None and refusal(case.baseline) is None for case in held) / len(held)
        verdict = "meets" if verified >= share else "MISSES"
        print(
            f"held out, {noise} {snr} dB: right readings verified {verified:.0%} (plain scoring {before:.0%}),"
            f" which {verdict} the target of {share:.0%}"
        )
    impostors = [case for case in cases if case.kind != "right"]
    accepted = [case for case in impostors if refusal(case.check) is None]
    print(f"impostors accepted, every room and both halves: {len(accepted)} of {len(impostors)}")


def main() -> None:
    """Measure, then print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speech", type=Path, default=SPEECH, help="LibriSpeech speaker folders of FLAC clips")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--core", type=int, default=None)
    parser.add_argument("--draws", type=int, default=2, help="noises drawn for each right reading in each room")
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help="the kinds of reading judged (a shard: replay,wrong), comma-separated"
    )
    parser.add_argument("--skip-speed", action="store_true", help="the separation alone")
    args = parser.parse_args()
    kinds = set(args.kinds.split(","))
    core = pin(args.core)
    clips = read_clips(args.speech)
    if not args.skip_speed:
        speed(core, args.repeat, clips)
    rng = np.random.default_rng(46)
    readings = spoken_readings(clips, rng) + clip_readings(clips, rng)
    cases = judged(readings, clips, args.draws, 56, kinds)
    summary(cases)
    print()
    if "right" in kinds:
        thresholds(cases)
        print()
    rooms(cases)


def speed(core: int, repeat: int, clips: dict[str, list[tuple[str, np.ndarray, int]]]) -> None:
    """The speed figures: cold, then warm beside the baselines."""
    figures = cold(core)
    rows = warm(repeat, clips)
    print(f"consent check bench, on core {core}")
    print(f"{'':58} {'audio s':>8} {'wall ms':>8} {'CPU ms':>8}")
    print(f"{'cold: import':58} {'':>8} {figures['import'][0] * 1e3:8.0f} {figures['import'][1] * 1e3:8.0f}")
    print(
        f"{'cold: first check, 6 s':58} {RECORDING_S:8.1f} {figures['first'][0] * 1e3:8.0f} "
        f"{figures['first'][1] * 1e3:8.0f}"
    )
    for label, seconds, wall, cpu in rows:
        print(f"{'warm: ' + label:58} {seconds:8.1f} {wall * 1e3:8.0f} {cpu * 1e3:8.0f}")
    check_ms = rows[0][2] * 1e3
    verdict = "meets" if check_ms <= TARGET_MS else "MISSES"
    print(f"the check of a 6 s recording, warm: {check_ms:.0f} ms wall, which {verdict} the target of {TARGET_MS:.0f}")
    print()


if __name__ == "__main__":
    main()
