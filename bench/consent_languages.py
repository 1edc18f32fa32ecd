"""Benchmark: the spoken consent check in the languages Whisper hears (backend/consents/phrase.py's
``_check_by_whisper``), on real speech, in quiet and in babble, beside a baseline measured in the same run.

    python bench/consent_languages.py [--speech DIR] [--only zh,es] [--codes 2] [--seed 82] [--core N]
        [--babble-db 20] [--tail-seconds 1] [--join 1]

``DIR`` (default tests/clips/languages) holds recordings of real speech in each language, listed in its
SOURCES.tsv (columns `language`, `file`, `transcript`), and a speaker's digits as ``<lang>/digit_0N.*`` where there
are some. No recording reads voicegate's phrase, so a reading is made of real speech: a clip's own sentence stands
for the phrase's words, followed after half a second by the code's digits, 0.15 s apart, from the language's
recorded digits (codes of the other nine where they lack zero, as Japanese's do), or spoken by espeak-ng in that
language where it has none (the table says which), each brought to the sentence's active level (the corpora's levels
differ by up to 40 dB). For each clip and each of ``--codes`` codes (drawn as voicegate draws them, by ``--seed``):

- right: the reading, against its own phrase;
- replay: the same reading against the phrase with one digit of the code changed, as voicegate could have drawn it
  (a recording of an older phrase);
- wrong: the reading against the phrase of another clip's sentence with the same code (another sentence read);
- guessed: the reading with its last digit's stretch silenced, against the phrase whose last digit is the one
  Whisper, told the digits in reverse, expects after the code's third (a 9's 8): an older reading whose last digit
  was cut out;
- more: the sentence, then the code, then the three digits after its last (a longer number read), against its
  phrase;
- repeated: the reading with one digit after the first said as the digit before it, against the code's phrase (an
  older reading spliced to the code where it lacks a digit). The place is the first digit's value mod 3 after the
  first, so that the codes, replays and babble are drawn as by runs before it.

With ``--join N``, each reading's sentence is a clip's joined to the next ``N - 1`` clips' (``joined``): a set of
short sentences (Common Voice's are of 3-5 s, 7-25 of Whisper's tokens) then stands for a phrase of voicegate's
length (30-44 tokens before the code, the name left out), whose mean score a word or two masked by babble moves
less; a wrong sentence is then a join that shares none of the reading's clips.

Each is judged in quiet and with six-talker babble (LibriSpeech, tests/clips) ``--babble-db`` under the speech,
with a second of room before and after. Beside the check, on the same recordings, the baseline: a bare
transcription by the same model (its encoder, then a greedy decode of the whole recording, nothing forced) taken
as saying the phrase when its text is at least half the phrase's (difflib's ratio over letters, accents and case
dropped) and its digits hold the code. CPU seconds are the process's, pinned to one core, for the check alone
(the recording already decoded to 16 kHz).

The clips' sentences run from 15 to 96 of Whisper's tokens, and up to 23 s: some are longer than voicegate's own
phrase (38-51 tokens with a short name). A second table gives the CPU of the phrase itself (``phrase_for``), with
a short name and with the longest name a phrase takes (``MAX_NAME_TOKENS``), read in 10, 20 and 28 s: what a
reading costs depends on its tokens and its length, not on what it says, so the language's clips, run together and
cut to length, stand for the words, followed by the code.

Targets (docs/consent.md#languages): right readings verified >= 95 % in quiet and >= 90 % in babble at 20 dB;
replays, wrong sentences, guessed last digits, longer numbers and repeated digits refused >= 99 %; <= 2 CPU-s per
reading.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Before numpy loads: one OpenBLAS thread, as voicegate runs (voicegate/__init__.py). `pin` binds only this
# thread to its core; started on two cores, OpenBLAS's pool spun on the other and its CPU was counted as the
# check's: Italian's median 0.42 CPU-s against 0.27 s with one thread, and in a harness pinned the same way,
# 2.1 s against 0.3-0.45 s while another process ran on the other core.
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ctranslate2

from backend.audio.measure import resample
from backend.consents import whisper
from backend.consents.languages import WORDINGS
from backend.consents.phrase import (
    MAX_NAME_TOKENS,
    MAX_SUBJECT_NAME_CHARS,
    Phrase,
    check_phrase,
    drawn_code,
    phrase_for,
    refusal,
)
from tests.noisy_room import in_room, spliced

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "tests" / "clips" / "languages"
RATE = whisper.RATE
KINDS = ("right", "replay", "wrong", "guessed", "more", "repeated")
#: The kinds that must be refused.
IMPOSTORS = KINDS[1:]
#: The targets: the share of right readings verified in each room, of replays and wrong sentences refused.
TARGET_RIGHT = {"quiet": 0.95, "babble": 0.90}
TARGET_REFUSED = 0.99
TARGET_CPU_S = 2.0
#: The baseline's bar: the share of the phrase's letters its transcript matches (difflib's ratio).
BASELINE_RATIO = 0.5
#: The digits a code is drawn from.
DIGITS = "0123456789"
#: How long the phrase's readings are in the second table (seconds, the code included).
READING_SECONDS = (10, 20, 28)
#: espeak-ng's voice for each language's digits where none are recorded.
ESPEAK_VOICES = {"zh": "cmn", "es": "es", "de": "de", "fr": "fr", "ja": "ja", "pt": "pt", "it": "it"}


@dataclass(frozen=True)
class Result:
    """One recording judged against one phrase, by the check and by the baseline."""

    language: str
    room: str
    kind: str
    accepted: bool
    #: Why it was refused: its words under the floor, its code not heard, or both ("" when accepted).
    why: str
    cpu_s: float
    baseline_accepted: bool
    baseline_cpu_s: float


#: How the baseline reads the digits of a transcript (`digits_in`). Digits as characters: Chinese and Japanese
#: numerals, with the other forms codes and phone numbers are written in (a circle for zero, "yao" for one, "liang"
#: for two).
_DIGIT_CHARACTERS = {
    char: digit
    for digit, chars in enumerate(("零〇", "一幺", "二两", "三", "四", "五", "六", "七", "八", "九"))
    for char in chars
}
#: Japanese zero in kana.
_DIGIT_KANA = {"ゼロ": 0, "ぜろ": 0, "レイ": 0, "れい": 0}
#: Other ways each language writes a digit as a word (accents folded): feminine forms, a phone number's "meia"
#: (a half dozen: six) in Brazil, German's "zwo".
_VARIANTS = {
    "es": {"una": 1},
    "de": {"zwo": 2, "ein": 1, "eine": 1},
    "fr": {"une": 1},
    "pt": {"uma": 1, "duas": 2, "meia": 6},
    "it": {"un": 1, "una": 1},
    "en": {"oh": 0},
}
_WORD = re.compile(r"[^\W_]+")


def _fold(text: str) -> str:
    """``text`` in compatibility form (full-width digits as ASCII), lowercase, accents dropped."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    return "".join(char for char in decomposed if not unicodedata.combining(char)).lower()


def digits_in(text: str, language: str) -> str:
    """The digits ``text`` says, in order, as numerals ("4719"): numerals, the language's digit words (and their
    variants) and digit characters, a number's each digit ("47" is 4 and 7); a word that is no digit (a number like
    "forty", any other word) is skipped."""
    words = {_fold(word): digit for digit, word in enumerate(WORDINGS[language].digit_words)}
    words |= _VARIANTS.get(language, {})
    out: list[str] = []
    for kana, digit in _DIGIT_KANA.items():
        text = text.replace(kana, str(digit))
    for word in _WORD.findall(_fold(text)):
        if word in words:
            out.append(str(words[word]))
            continue
        for char in word:
            if char in _DIGIT_CHARACTERS:
                out.append(str(_DIGIT_CHARACTERS[char]))
            elif char.isascii() and char.isdigit():
                out.append(char)
    return "".join(out)


def pin(core: int | None) -> int:
    """Run on one core (the first allowed, or ``core``), with one thread for the model and BLAS."""
    chosen = core if core is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {chosen})
    return chosen


def load(path: Path) -> np.ndarray:
    samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    return resample(samples.mean(axis=1), rate, RATE)


def sentences(folder: Path, only: set[str]) -> dict[str, list[tuple[np.ndarray, str]]]:
    """Each language's recordings (digits left out) and what they say."""
    out: dict[str, list[tuple[np.ndarray, str]]] = {}
    with (folder / "SOURCES.tsv").open(encoding="utf-8") as sources:
        for row in csv.DictReader(sources, delimiter="\t"):
            language, name = row["language"], row["file"]
            if language in only and not Path(name).name.startswith("digit_") and row["transcript"]:
                out.setdefault(language, []).append((load(folder / name), row["transcript"]))
    return out


def joined(clips: list[tuple[np.ndarray, str]], count: int, language: str) -> list[tuple[np.ndarray, str]]:
    """Each of ``clips`` followed by the next ``count - 1`` (in the set's order, round), 0.3 s apart at the first's
    level, their sentences joined: readings nearer voicegate's phrase (30-44 of Whisper's tokens before the code)
    from a set of short sentences. The clips as they are for a ``count`` of 1."""
    if count == 1:
        return clips
    space = "" if language in ("zh", "ja") else " "
    out = []
    for index in range(len(clips)):
        parts = [clips[(index + step) % len(clips)] for step in range(count)]
        audio = spliced([part for part, _ in parts], [0.3] * (count - 1) + [0.0])
        out.append((audio, space.join(text for _, text in parts)))
    return out


def digit_speaker(folder: Path, language: str) -> tuple[str, Callable[[int], np.ndarray], str]:
    """Who says ``language``'s digits, and which digits the codes are drawn from: its recorded speaker's when
    ``folder`` holds them (a set without zero, as Japanese's, draws codes of the other nine), else espeak-ng's."""
    recorded = {int(path.stem[-2:]): path for path in (folder / language).glob("digit_0[0-9].*")}
    if len(recorded) >= 9:
        clips = {digit: load(path) for digit, path in recorded.items()}
        missing = "".join(digit for digit in DIGITS if int(digit) not in clips)
        label = f"rec. no {missing}" if missing else "recorded"
        return label, clips.__getitem__, "".join(str(digit) for digit in sorted(clips))
    spoken: dict[int, np.ndarray] = {}
    for digit in range(10):
        with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
            word = WORDINGS[language].digit_words[digit]
            voice = ESPEAK_VOICES[language]
            subprocess.run(["espeak-ng", "-v", voice, "-w", wav.name, word], check=True, capture_output=True)
            spoken[digit] = load(Path(wav.name))
    return "espeak-ng", spoken.__getitem__, DIGITS


def reading(sentence: np.ndarray, code: str, say: Callable[[int], np.ndarray]) -> np.ndarray:
    """``sentence``, then half a second, then the code's digits 0.15 s apart, at the sentence's level."""
    return spliced([sentence, *(say(int(digit)) for digit in code)], [0.5] + [0.15] * len(code))


def last_unsaid(sentence: np.ndarray, code: str, say: Callable[[int], np.ndarray]) -> np.ndarray:
    """``reading(sentence, code, say)`` with its last digit's stretch silenced."""
    audio = reading(sentence, code, say)
    audio[-int(0.15 * RATE) - say(int(code[-1])).size :] = 0.0
    return audio


def guess(code: str, digits: str) -> str:
    """``code`` with its last digit the one the reversed digits put after its third: one less (a 9's 8), or one
    more where there is none less among ``digits``."""
    third = int(code[2])
    below, above = str(third - 1), str(third + 1)
    return code[:3] + (below if third > 0 and below in digits else above)


def longer(code: str, digits: str) -> str:
    """``code`` and the three of ``digits`` after its last digit, counting on (9 then 0)."""
    after = [str((int(code[-1]) + step) % 10) for step in range(1, 11)]
    return code + "".join([digit for digit in after if digit in digits][:3])


def repeated(code: str) -> str:
    """``code`` with the digit at place 1 + its first digit mod 3 (1 to 3) said as the one before it: "4719" as
    "4779"."""
    at = 1 + int(code[0]) % 3
    return code[:at] + code[at - 1] + code[at + 1 :]


def phrase(sentence: str, code: str, language: str) -> Phrase:
    """A phrase whose words are ``sentence`` and whose code ``code``."""
    wording = WORDINGS[language]
    return Phrase(text=f"{sentence}{wording.separator}{wording.code_words(code)}.", code=code, language=language)


def drawn(rng: np.random.Generator, digits: str) -> str:
    """A code of four of ``digits``, drawn as voicegate draws one (``drawn_code``: no digit the same as the one
    before it), by ``rng``."""
    return drawn_code(lambda options: options[int(rng.integers(0, len(options)))], digits)


def changed(code: str, rng: np.random.Generator, digits: str = DIGITS) -> str:
    """``code`` with one digit changed to another of ``digits``, one voicegate could have drawn (the same as neither
    digit beside it): the code of an older phrase."""
    at = int(rng.integers(0, len(code)))
    beside = set(code[max(0, at - 1) : at + 2])
    options = [digit for digit in digits if digit not in beside]
    return code[:at] + options[int(rng.integers(0, len(options)))] + code[at + 1 :]


def _letters(text: str) -> str:
    return "".join(char for char in _fold(text) if char.isalnum())


class Baseline:
    """A bare transcription by the same model, compared with the phrase (see the module's docstring)."""

    def __init__(self, model: whisper.Whisper) -> None:
        self._model = model._model
        self._tokenizer = model._tokenizer
        self._start = self._tokenizer.special("<|startoftranscript|>")

    def transcript(self, audio: np.ndarray, language: str) -> str:
        """What the model writes for ``audio`` in ``language``, greedily."""
        encoded = self._model.encode(ctranslate2.StorageView.from_array(whisper.log_mel(audio)[None]), to_cpu=True)
        prompt = [
            self._start,
            self._tokenizer.special(f"<|{language}|>"),
            self._tokenizer.special("<|transcribe|>"),
            self._tokenizer.special("<|notimestamps|>"),
        ]
        ids = self._model.generate(encoded, [prompt], beam_size=1)[0].sequences_ids[0]
        return self._tokenizer.decode([token for token in ids if token < self._start - 1])

    @staticmethod
    def says(transcript: str, phrase: Phrase) -> bool:
        """Whether ``transcript`` says ``phrase``: half its letters, and the code among its digits."""
        ratio = difflib.SequenceMatcher(None, _letters(transcript), _letters(phrase.text), autojunk=False).ratio()
        return ratio >= BASELINE_RATIO and phrase.code in digits_in(transcript, phrase.language)


def judge(audio: np.ndarray, against: Phrase, transcript: tuple[str, float], kind: str, room: str) -> Result:
    started = time.process_time()
    check = check_phrase(audio, RATE, against)
    cpu = time.process_time() - started
    text, baseline_cpu = transcript
    accepted = refusal(check) is None
    why = (
        ""
        if accepted
        else "+".join(
            part for part, failed in (("words", check.word_accuracy < 0.5), ("code", not check.code_heard)) if failed
        )
    )
    return Result(
        against.language,
        room,
        kind,
        accepted,
        why or ("" if accepted else "other"),
        cpu,
        Baseline.says(text, against),
        baseline_cpu,
    )


def run(
    folder: Path, only: set[str], codes: int, babble_db: float, *, seed: int, join: int = 1
) -> tuple[list[Result], dict[str, str]]:
    """Every language's readings judged in quiet and babble, each of ``join`` clips joined (``joined``; a language
    with fewer clips than twice that left out, so that a wrong sentence shares none of a reading's); and who said each
    language's digits."""
    model = whisper.shared()
    baseline = Baseline(model)
    rng = np.random.default_rng(seed)
    results: list[Result] = []
    speakers: dict[str, str] = {}
    for language, alone in sorted(sentences(folder, only).items()):
        if join > 1 and len(alone) < 2 * join:
            print(f"  {language}: {len(alone)} clips, fewer than {2 * join} to join; left out", file=sys.stderr)
            continue
        clips = joined(alone, join, language)
        speakers[language], say, digits = digit_speaker(folder, language)
        for index, (audio, said) in enumerate(clips):
            other = clips[(index + join) % len(clips)][1]
            for _ in range(codes):
                code = drawn(rng, digits)
                made = {
                    "right": reading(audio, code, say),
                    "guessed": last_unsaid(audio, code, say),
                    "more": reading(audio, longer(code, digits), say),
                    "repeated": reading(audio, repeated(code), say),
                }
                noise_seed = int(rng.integers(0, 2**31))
                for room in ("quiet", "babble"):
                    heard = {}
                    for kind, spoken in made.items():
                        recording = (
                            spoken if room == "quiet" else in_room(spoken, RATE, "babble", babble_db, noise_seed)
                        )
                        started = time.process_time()
                        transcript = (baseline.transcript(recording, language), time.process_time() - started)
                        heard[kind] = (recording, transcript)
                    recording, transcript = heard["right"]
                    results.append(judge(recording, phrase(said, code, language), transcript, "right", room))
                    results.append(
                        judge(recording, phrase(said, changed(code, rng, digits), language), transcript, "replay", room)
                    )
                    if len(clips) > 1:
                        results.append(judge(recording, phrase(other, code, language), transcript, "wrong", room))
                    recording, transcript = heard["guessed"]
                    against = phrase(said, guess(code, digits), language)
                    results.append(judge(recording, against, transcript, "guessed", room))
                    recording, transcript = heard["more"]
                    results.append(judge(recording, phrase(said, code, language), transcript, "more", room))
                    recording, transcript = heard["repeated"]
                    results.append(judge(recording, phrase(said, code, language), transcript, "repeated", room))
            print(f"  {language}: clip {index + 1}/{len(clips)} judged", file=sys.stderr, flush=True)
    return results, speakers


def longest_name() -> str:
    """The longest name a phrase takes: "Ana-" repeated while its tokens and characters are within the bounds."""
    name = "Ana"
    while (
        len(name) + 4 <= MAX_SUBJECT_NAME_CHARS and len(whisper.tokenizer().encode(f" {name}-Ana")) <= MAX_NAME_TOKENS
    ):
        name += "-Ana"
    return name


def phrase_cpu(folder: Path, only: set[str]) -> list[tuple[str, int, list[float]]]:
    """The check's CPU seconds on voicegate's own phrase in each language, for a short name and the longest, at
    each of `READING_SECONDS`, the better of two (the first check of a process also sets up what later ones reuse):
    (language, the phrase's tokens, the seconds at each length)."""
    rows = []
    longest = longest_name()
    for language, clips in sorted(sentences(folder, only).items()):
        _, say, digits = digit_speaker(folder, language)
        words = np.concatenate([audio for audio, _ in clips])
        code = digits[1:5]
        # The pause and the code after the words, in samples.
        after = reading(words[:RATE], code, say).size - RATE
        for name in ("Ana", longest):
            against = phrase_for(name, code, language)
            tokens = len(whisper.tokenizer().encode(" " + against.text))
            cpu = []
            for seconds in READING_SECONDS:
                recording = reading(words[: seconds * RATE - after], code, say)
                cpu.append(min(_timed(recording, against) for _ in range(2)))
            rows.append((language, tokens, cpu))
    return rows


def _timed(recording: np.ndarray, against: Phrase) -> float:
    started = time.process_time()
    check_phrase(recording, RATE, against)
    return time.process_time() - started


def report_phrase_cpu(rows: list[tuple[str, int, list[float]]]) -> None:
    """The second table: the phrase's CPU by its tokens and length, and whether each is within the target."""
    print()
    print("voicegate's own phrase, a short name and the longest (CPU-s by the reading's length, the better of two):")
    print(f"{'lang':4} {'tokens':>6} | " + " ".join(f"{seconds:>5} s" for seconds in READING_SECONDS))
    for language, tokens, cpu in rows:
        print(f"{language:4} {tokens:6} | " + " ".join(f"{seconds:7.2f}" for seconds in cpu))
    every = [seconds for _, _, cpu in rows for seconds in cpu]
    over = sum(seconds > TARGET_CPU_S for seconds in every)
    print(f"phrase CPU: max {max(every):.2f} s; {over} of {len(every)} over {TARGET_CPU_S} s")


def share(results: list[Result], accepted: bool, *, baseline: bool = False) -> str:
    """The share of ``results`` the check (or the baseline) accepted (or refused), with the count."""
    if not results:
        return "-"
    hits = sum((r.baseline_accepted if baseline else r.accepted) == accepted for r in results)
    return f"{hits / len(results):6.1%} ({hits}/{len(results)})"


def report(results: list[Result], speakers: dict[str, str], babble_db: float) -> None:
    """One row per language and room: the check beside the baseline, and the targets met."""
    print(
        f"{'lang':4} {'room':13} {'digits':9} | {'right verified':>16} {'replays refused':>16} "
        f"{'wrong refused':>16} {'guessed refused':>16} {'more refused':>16} {'repeated refused':>16} "
        f"{'CPU s p50/max':>13} | baseline: {'right':>16} {'replays':>16} {'wrong':>16} {'guessed':>16} {'more':>16} "
        f"{'repeated':>16} {'CPU s p50':>9}"
    )
    misses = []
    for language in sorted({r.language for r in results}):
        for room in ("quiet", "babble"):
            rows = [r for r in results if r.language == language and r.room == room]
            by = {kind: [r for r in rows if r.kind == kind] for kind in KINDS}
            cpu = [r.cpu_s for r in rows]
            label = "quiet" if room == "quiet" else f"babble {babble_db:g} dB"
            print(
                f"{language:4} {label:13} {speakers[language]:9} | {share(by['right'], True):>16} "
                + "".join(f"{share(by[kind], False):>16} " for kind in IMPOSTORS)
                + f"{statistics.median(cpu):6.2f}/{max(cpu):5.2f} | {'':9} "
                + f"{share(by['right'], True, baseline=True):>16} "
                + "".join(f"{share(by[kind], False, baseline=True):>16} " for kind in IMPOSTORS)
                + f"{statistics.median(r.baseline_cpu_s for r in rows):9.2f}"
            )
            right = sum(r.accepted for r in by["right"]) / max(1, len(by["right"]))
            if right < TARGET_RIGHT[room]:
                misses.append(f"{language} {label}: right readings verified {right:.1%} < {TARGET_RIGHT[room]:.0%}")
            for kind in IMPOSTORS:
                refused = sum(not r.accepted for r in by[kind]) / max(1, len(by[kind]))
                if by[kind] and refused < TARGET_REFUSED:
                    misses.append(f"{language} {label}: {kind} refused {refused:.1%} < {TARGET_REFUSED:.0%}")
            if max(cpu) > TARGET_CPU_S:
                misses.append(f"{language} {label}: {max(cpu):.2f} CPU-s > {TARGET_CPU_S}")
    print()
    print("why right readings were refused (words: under the floor; code: a digit not the likeliest):")
    for language in sorted({r.language for r in results}):
        for room in ("quiet", "babble"):
            causes = Counter(r.why for r in results if (r.language, r.room, r.kind) == (language, room, "right"))
            causes.pop("", None)
            print(f"  {language} {room}: " + (", ".join(f"{why} {n}" for why, n in sorted(causes.items())) or "none"))
    print()
    print("targets: " + ("all met" if not misses else "missed: " + "; ".join(misses)))


def main() -> None:
    """Measure, then print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speech", type=Path, default=SPEECH, help="recordings with a SOURCES.tsv (see above)")
    parser.add_argument("--only", default=",".join(code for code in WORDINGS if code != "en"))
    parser.add_argument("--codes", type=int, default=2, help="codes drawn for each clip")
    parser.add_argument("--core", type=int, default=None)
    parser.add_argument("--babble-db", type=float, default=20.0)
    parser.add_argument(
        "--join", type=int, default=1, help="clips joined into each reading's sentence (see joined), 1 for each alone"
    )
    parser.add_argument("--seed", type=int, default=82, help="draws the codes, the replays' digits and the babble")
    parser.add_argument(
        "--tail-seconds",
        type=float,
        default=whisper.TAIL_SECONDS,
        help="silence the encoder hears after a recording; 30 for Whisper's whole 30 s window, as before it was cut",
    )
    args = parser.parse_args()
    whisper.TAIL_SECONDS = args.tail_seconds
    core = pin(args.core)
    started = time.process_time()
    whisper.shared()
    loaded = time.process_time() - started
    print(
        f"consent check in languages beyond English, on core {core}; the model loaded in {loaded:.2f} CPU-s;"
        f" the encoder hears each recording and {whisper.TAIL_SECONDS:g} s of silence (30 s at most)"
    )
    results, speakers = run(
        args.speech, set(args.only.split(",")), args.codes, args.babble_db, seed=args.seed, join=args.join
    )
    report(results, speakers, args.babble_db)
    report_phrase_cpu(phrase_cpu(args.speech, set(args.only.split(","))))


if __name__ == "__main__":
    main()
