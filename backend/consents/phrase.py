"""The spoken consent phrase: what a subject reads aloud, and an offline check that a recording says it.

``make_phrase`` names the subject and voicegate, says what is consented to, and ends with a one-time code of four
digits spoken as words ("... My code is four, seven, one, nine."), drawn with ``secrets`` (``drawn_code``), so a
recording of an earlier phrase says the wrong code. ``check_phrase`` recognises a recording with pocketsphinx and
the en-us acoustic model and CMU dictionary its wheel carries (nothing is fetched), and ``refusal`` judges it; a
phrase in another language is heard by Whisper instead (``_check_by_whisper``).

The recogniser is held to a loop over the phrase's own words and the ten digits: said, the phrase is heard
well; said something else, the loop can only string the phrase's words together at random. The words heard
are aligned with the phrase where it was said (``align``, a fitting alignment: every word of the phrase, and
every word heard inside its stretch, is a match or an error; words heard before and after it are not counted):

    word_accuracy = max(0, 1 - errors / scorable words of the phrase)

A word matches one of the same spelling or pronunciation ("two" and "to"); ``code_heard`` needs each of the
code's four digits matched. A word of the subject's name the dictionary lacks is left out of the grammar and
the score (a gap that takes any words heard there); `voicegate` itself is added (``EXTRA_WORDS``). A recording
refused as not the phrase is heard again with its noise gated as a sample's is, and the better hearing kept.
A recording heard as the phrase but for its code has the stretch after the word before the code heard once more
by a loop over the ten digits alone (``code_alone``): the phrase's words no longer compete for the digits (noise
made "four" "voice" and "six" "text"), and the code is heard only if those digits are its four, in order, so a
replay's own digits still refuse it.

What it cannot tell: a phrase said with "not" slipped in scores as one error; a recording spliced from the
subject's voice, an old phrase followed by the new code, is heard as the phrase (the speaker check against the
consent's voiceprint is a separate step). How the thresholds were set: docs/consent.md#phrase-scoring.

A decoder is not thread-safe and holds the GIL while it decodes: callers take an idle one from a pool, and
audio goes to it in blocks of ``BLOCK_SECONDS``, the GIL let go between them.
"""

from __future__ import annotations

import re
import secrets
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import pocketsphinx

from backend.audio.measure import Speech, detect_speech, downmix, resample, snr_estimate
from backend.audio.process import pauses, reduce_noise
from backend.consents import whisper
from backend.consents.languages import WORDINGS, Wording

F32 = npt.NDArray[np.float32]
Refusal = Literal["not_speech", "too_short", "phrase_mismatch", "too_noisy"]

#: The acoustic model's rate: recordings are resampled to it.
RATE: Final = 16000
CODE_DIGITS: Final = 4
DIGITS: Final = "0123456789"
DIGIT_WORDS: Final = WORDINGS["en"].digit_words
#: A subject's name longer than this is refused: the phrase is read in one breath, and its words make the grammar.
MAX_SUBJECT_NAME_CHARS: Final = 100
#: Less speech than this (30 ms VAD frames) is none at all.
NOT_SPEECH_SECONDS: Final = 0.3
#: Less speech than this has not read the phrase through (how it was set: docs/consent.md#phrase-scoring).
MIN_SPEECH_SECONDS: Final = 3.0
#: Below this word accuracy the recording does not say the phrase (docs/consent.md#phrase-scoring).
MIN_WORD_ACCURACY: Final = 0.50
#: A recording whose phrase was not heard, under this speech-to-noise ratio (dB, as the samples' quality report
#: measures it), is refused as too noisy rather than as another sentence: right readings start to fail there
#: (docs/consent.md#phrase-scoring), and the room, not the reading, is what to change.
NOISY_SNR_DB: Final = 20.0
#: Words of the phrase the dictionary lacks, with their pronunciation (the model's ARPAbet phones).
EXTRA_WORDS: Final = {"voicegate": "V OY S G EY T"}
#: Audio goes to the decoder this many seconds at a time; the GIL is free between blocks.
BLOCK_SECONDS: Final = 0.1
#: pocketsphinx's word insertion penalty (its `wip`; 0.65 by default), a factor on each word's path score: in noise
#: the decoder strung short words of the loop ("i", "to", "the") through every gap, and these insertions were the
#: errors (how it was set: docs/consent.md#phrase-scoring).
WORD_INSERTION_PENALTY: Final = 0.01
#: The recording's loudest frames (99th percentile of 30 ms frame power) are brought to this level, amplified by
#: at most ``MAX_GAIN_DB``: the decoder's cepstral mean starts from a typical level and adapts as it goes, and
#: a recording far under it lost words at its start (word accuracy 0.87 against 0.91 at -30 dB).
LEVEL_DBFS: Final = -20.0
MAX_GAIN_DB: Final = 40.0
_LEVEL_FRAME: Final = int(RATE * 0.03)
_POWER_FLOOR: Final = 1e-10
#: A stretch shorter than this cannot hold four digits said: the code was left out.
MIN_CODE_SECONDS: Final = 0.5
#: The decoder's frame rate (its `frate`): a word segment's frames to seconds.
_FRAMES_PER_SECOND: Final = 100
_WORD: Final = re.compile(r"[a-z]+(?:'[a-z]+)*")
_ALTERNATE: Final = re.compile(r"\(\d+\)$")


class Phrase(msgspec.Struct, frozen=True):
    """A consent phrase: what the subject reads aloud, the one-time code it ends with, and its language."""

    #: What the subject reads aloud, ending with the code's four digits as words.
    text: str
    #: The four digits, e.g. "4719".
    code: str
    language: str


class PhraseCheck(msgspec.Struct, frozen=True):
    """What a recording was heard to say, against its phrase."""

    #: 0..1 over the phrase's scorable words (see the module's docstring).
    word_accuracy: float
    #: All four digits of the code recognised, in order.
    code_heard: bool
    speech_seconds: float
    #: The words recognised, for the audit trail.
    heard: str
    #: The recording's speech-to-noise ratio in dB as the samples' quality report measures it (None when it has no
    #: speech, or nothing to take the noise from).
    snr_db: float | None = None
    #: Whether the words were heard in the recording with its noise gated, as samples are cleaned (a second
    #: hearing, taken when the recording as it came did not say the phrase).
    cleaned: bool = False
    #: Whether the code was heard only by hearing its stretch again with the digits alone (see the module's
    #: docstring); ``heard`` is then what the whole recording was heard to say.
    code_alone: bool = False


@dataclass(frozen=True)
class _Model:
    """pocketsphinx's model files for a language, in its wheel."""

    acoustic_model: str
    dictionary: str


#: The languages pocketsphinx hears; the others of `WORDINGS` are Whisper's (``_check_by_whisper``).
_POCKETSPHINX: Final = {"en": _Model(acoustic_model="en-us/en-us", dictionary="en-us/cmudict-en-us.dict")}
#: A subject's name longer than this, in Whisper's tokens, is refused in the languages Whisper hears: a name of 100
#: characters of some scripts is 450 tokens, past the 448 the decoder has positions for, and the decoder's pass
#: grows with it (5 CPU-s for 350).
MAX_NAME_TOKENS: Final = 64
#: A recording heard by Whisper is heard from a moment before its speech starts: Whisper hears 30 s, and a reading
#: may come after a long silence.
SPEECH_LEAD_SECONDS: Final = 0.3
#: For each language Whisper hears, the mean log-probability (nats) of the phrase's words before its code under
#: which a recording does not say them; it is mapped to a ``word_accuracy`` of ``MIN_WORD_ACCURACY``
#: (``_whisper_accuracy``), so that one bar judges every language (how they were set: docs/consent.md#languages).
WHISPER_FLOORS: Final = {"es": -3.0, "de": -3.0, "fr": -3.0, "pt": -3.0, "it": -3.0, "zh": -3.0, "ja": -3.0}
#: How much likelier (nats) each of the code's digits must be, at its place, than any other digit for Whisper to
#: hear the code: e times. Without it, a replay of an older code whose digits noise had blurred to near-ties was
#: once taken for the new code (1 of 26 French readings in babble at 20 dB); with it none of 160, and 5 of 160 right
#: readings more are refused (docs/consent.md#languages).
WHISPER_DIGIT_MARGIN: Final = 1.0
#: How far (nats) the code's digit may trail the likeliest digit heard alone, at a place heard with what follows it
#: (``whisper.Whisper.hear``): following settles a digit Whisper heard in the pause before the code (right Chinese
#: readings in babble trailed by up to 2.6 nats), not a recording that says another digit there (a code's first
#: digit missing or another digit said before it trailed by 1.7-8.5; docs/consent.md#languages).
WHISPER_FOLLOWED_SLACK: Final = 3.0
#: How much likelier (nats) it must be, after a code's first digits, that its last digit follows than that the phrase
#: ends there: a replay whose last digit was silenced or cut out has it guessed, and Whisper's guess after a 9 is the
#: 8 that the digits told in reverse put there (docs/consent.md#languages).
WHISPER_LAST_DIGIT: Final = 2.0
#: How much likelier (nats) it may be, after a code's last digit, that more digits follow than that the phrase ends:
#: the ten digits read in order are otherwise heard as the code of their first four (docs/consent.md#languages).
WHISPER_MORE_DIGITS: Final = 6.0


def templates() -> list[str]:
    """Every language's phrase, with ``{name}`` and ``{code}`` where the subject's name and the code's words go."""
    return [wording.template for wording in WORDINGS.values()]


def make_phrase(subject_name: str, language: str = "en") -> Phrase:
    """A fresh phrase for ``subject_name``: it names the subject and voicegate, says what is consented to (a
    synthetic voice made from their recordings, speaking text they type) and ends with a one-time code of four
    digits drawn with ``secrets``. ``ValueError`` for a language it has no wording for
    (`backend.consents.languages.WORDINGS`), or a name that is blank or longer than ``MAX_SUBJECT_NAME_CHARS`` (or,
    in a language Whisper hears, than ``MAX_NAME_TOKENS``)."""
    return phrase_for(subject_name, drawn_code(secrets.choice), language)


def drawn_code(choose: Callable[[str], str], digits: str = DIGITS) -> str:
    """A code of ``CODE_DIGITS`` of ``digits``, each chosen by ``choose`` (``secrets.choice``; a benchmark's seeded
    draw) from those but the digit before it: a digit said twice in a row is the likelier to be miscounted or
    misheard (Whisper refused 8.5 % of 306 right readings of such codes, 4.6 % of 854 others;
    docs/consent.md#languages), and a code is one of 7,290 instead of 10,000."""
    code = choose(digits)
    while len(code) < CODE_DIGITS:
        code += choose(digits.replace(code[-1], ""))
    return code


def phrase_for(subject_name: str, code: str, language: str = "en") -> Phrase:
    """The phrase for ``subject_name`` with a given ``code`` (four digits): ``make_phrase`` draws the code; this
    makes an old phrase again, or a replay of one with another code. ``ValueError`` as ``make_phrase``, and for
    a code that is not four digits."""
    wording = _wording(language)
    name = " ".join(subject_name.split())
    if not name:
        raise ValueError("the subject's name is blank")
    if len(name) > MAX_SUBJECT_NAME_CHARS:
        raise ValueError(f"the subject's name is longer than {MAX_SUBJECT_NAME_CHARS} characters")
    if len(code) != CODE_DIGITS or not all(digit in DIGITS for digit in code):
        raise ValueError(f"the code must be {CODE_DIGITS} digits")
    if language not in _POOLS and len(whisper.tokenizer().encode(" " + name)) > MAX_NAME_TOKENS:
        raise ValueError(f"the subject's name is longer than Whisper reads it in one phrase ({MAX_NAME_TOKENS} tokens)")
    return Phrase(text=wording.template.format(name=name, code=wording.code_words(code)), code=code, language=language)


def check_phrase(samples: npt.ArrayLike, rate: int, phrase: Phrase) -> PhraseCheck:
    """What ``samples`` say against ``phrase``: float32 mono ``(n,)`` or channels first ``(channels, n)`` in
    [-1, 1], at any ``rate`` (resampled to 16 kHz). Thread-safe; CPU-bound (run it on the CPU executor). A recording
    not heard as the phrase is heard a second time, its noise gated, and the better hearing returned; one heard as
    the phrase but for its code has the code's stretch heard again with the digits alone.

    ``ValueError`` for a phrase in a language without a model, or whose text does not end with its code's
    words, and for audio of another shape or a rate that is not positive."""
    _wording(phrase.language)
    audio = _mono_16k(samples, rate)
    speech = detect_speech(audio, RATE)
    snr = snr_estimate(speech)
    if phrase.language not in _POOLS:
        return _check_by_whisper(audio, phrase, speech=speech, snr=snr)
    pool = _POOLS[phrase.language]
    with pool.recogniser() as recogniser:
        reference = _reference(phrase, recogniser)
        vocabulary = sorted({word for word in reference if word is not None} | set(DIGIT_WORDS))
        check, heard = _hearing(recogniser, reference, vocabulary, audio, speech=speech, snr=snr, cleaned=False)
        hearings = [(audio, heard)]
        if refusal(check) in {"phrase_mismatch", "too_noisy"}:
            gated = _gated(audio, speech)
            cleaned, heard = _hearing(recogniser, reference, vocabulary, gated, speech=speech, snr=snr, cleaned=True)
            hearings.append((gated, heard))
            if _rank(cleaned) > _rank(check):
                check = cleaned
        end = speech.span_s()
        if _only_code_missed(check) and end is not None:
            # Either hearing's stretch may say the code (gating helps under steady noise and costs under babble);
            # a replay's stretch says its own digits in both.
            for heard_in, heard in hearings:
                if _code_alone(recogniser, reference, heard, heard_in, end=end[1], code=phrase.code):
                    return msgspec.structs.replace(check, code_heard=True, code_alone=True)
    return check


def refusal(check: PhraseCheck) -> Refusal | None:
    """None when the recording says the phrase; else why not (the first that applies): "not_speech",
    "too_short", or the phrase not heard: "too_noisy" under ``NOISY_SNR_DB``, else "phrase_mismatch"."""
    if check.speech_seconds < NOT_SPEECH_SECONDS:
        return "not_speech"
    if check.speech_seconds < MIN_SPEECH_SECONDS:
        return "too_short"
    if check.word_accuracy < MIN_WORD_ACCURACY or not check.code_heard:
        noisy = check.snr_db is not None and check.snr_db < NOISY_SNR_DB
        return "too_noisy" if noisy else "phrase_mismatch"
    return None


def words(text: str) -> list[str | None]:
    """``text`` as lowercase words, accents and punctuation dropped; a piece that is no word of letters (digits,
    other scripts) is None."""
    folded = unicodedata.normalize("NFKD", text.replace("\u2019", "'"))
    plain = "".join(char for char in folded if not unicodedata.combining(char)).lower()
    out: list[str | None] = []
    for piece in re.split(r"[\s\-\u2010-\u2015/]+", plain):
        stripped = re.sub(r"^[^\w']+|[^\w']+$|^'+|'+$", "", piece)
        if stripped:
            out.append(stripped if _WORD.fullmatch(stripped) else None)
    return out


def align(
    reference: Sequence[str | None], heard: Sequence[str], same: Callable[[str, str], bool]
) -> tuple[int, set[int]]:
    """The fewest errors (substitutions, deletions, insertions) that turn ``reference`` into a stretch of
    ``heard``, and the positions of ``reference`` that one such alignment matches. Words heard before the stretch
    and after it are no errors: the phrase is scored where it was said, not charged with what the recogniser made
    of the noise before and after it; every word of the phrase is still a match or an error, and so is every word
    heard inside the stretch. A None in ``reference`` is a gap that takes any number of heard words at no cost.
    Among alignments with the fewest errors, one with the most matches is taken."""
    errors, pairs = _alignment(reference, heard, same)
    return errors, set(pairs)


def _alignment(
    reference: Sequence[str | None], heard: Sequence[str], same: Callable[[str, str], bool]
) -> tuple[int, dict[int, int]]:
    """``align``'s errors, and its matches as the position of the word heard for each position of ``reference``."""
    rows, cols = len(reference), len(heard)
    # Costs count an error as `scale` and a match as -1: no number of matches outweighs an error.
    scale = rows + 1
    cost = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    for i in range(1, rows + 1):
        word = reference[i - 1]
        if word is None:
            cost[i, 0] = cost[i - 1, 0]
            for j in range(1, cols + 1):
                cost[i, j] = min(cost[i - 1, j], cost[i, j - 1])
            continue
        cost[i, 0] = cost[i - 1, 0] + scale
        for j in range(1, cols + 1):
            step = -1 if same(word, heard[j - 1]) else scale
            cost[i, j] = min(cost[i - 1, j - 1] + step, cost[i - 1, j] + scale, cost[i, j - 1] + scale)
    i, j = rows, int(np.argmin(cost[rows]))
    best = int(cost[i, j])
    matched: dict[int, int] = {}
    while i > 0:
        word = reference[i - 1]
        if word is None:
            if j > 0 and cost[i, j] == cost[i, j - 1]:
                j -= 1
            else:
                i -= 1
        elif j > 0 and cost[i, j] == cost[i - 1, j - 1] - 1 and same(word, heard[j - 1]):
            matched[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif j > 0 and cost[i, j] == cost[i - 1, j - 1] + scale:
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + scale:
            i -= 1
        else:
            j -= 1
    return (best + len(matched)) // scale, matched


@dataclass(frozen=True)
class Heard:
    """What a recogniser heard in a recording: the words, each's end (seconds from the start), and the cepstral
    mean the decoder ended with (what a second hearing of part of the recording starts from)."""

    words: list[str]
    ends: list[float]
    cmn: str


class _Recogniser:
    """One pocketsphinx decoder for a language, with ``EXTRA_WORDS`` added. One caller at a time."""

    def __init__(self, spec: _Model) -> None:
        config = pocketsphinx.Config(
            hmm=pocketsphinx.get_model_path(spec.acoustic_model),
            dict=pocketsphinx.get_model_path(spec.dictionary),
            lm=None,
            # The lattice search (bestpath) costs more than the decode and changes no word heard on so small a grammar.
            bestpath=False,
            wip=WORD_INSERTION_PENALTY,
            loglevel="ERROR",
        )
        self._decoder = pocketsphinx.Decoder(config)
        # The cepstral mean a recording starts from: the model's, not the last recording's (which the decoder would
        # carry over, so that the same recording was heard differently after another one).
        self._cmn_start = str(config["cmninit"])
        for word, phones in EXTRA_WORDS.items():
            self._decoder.add_word(word, phones, True)
        self._pronunciations: dict[str, frozenset[str]] = {}

    def knows(self, word: str) -> bool:
        """Whether the dictionary has ``word``."""
        return bool(self.pronunciations(word))

    def pronunciations(self, word: str) -> frozenset[str]:
        """Every pronunciation the dictionary gives ``word`` (its alternates are ``word(2)``, ``word(3)``, ...)."""
        if word not in self._pronunciations:
            found: set[str] = set()
            while (phones := self._decoder.lookup_word(word if not found else f"{word}({len(found) + 1})")) is not None:
                found.add(str(phones))
            self._pronunciations[word] = frozenset(found)
        return self._pronunciations[word]

    def same(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` are one word to the ear: the same, or sharing a pronunciation."""
        return a == b or bool(self.pronunciations(a) & self.pronunciations(b))

    def recognise(self, audio: F32, vocabulary: Sequence[str], cmn: str | None = None) -> Heard:
        """The words of ``vocabulary`` heard in ``audio`` (mono, 16 kHz), in order, by a loop over them; the
        decoder's cepstral mean starts from ``cmn`` (a ``Heard.cmn``), or from the model's."""
        decoder = self._decoder
        share = 1.0 / len(vocabulary)
        loop = [(0, 1, share, word) for word in vocabulary] + [(1, 0, 1.0)]
        decoder.add_fsg("loop", decoder.create_fsg("loop", 0, 1, loop))
        decoder.activate_search("loop")
        pcm = _pcm(audio)
        block = int(RATE * BLOCK_SECONDS) * 2
        decoder.set_cmn(self._cmn_start if cmn is None else cmn)
        decoder.start_utt()
        for start in range(0, len(pcm), block):
            decoder.process_raw(pcm[start : start + block])
        decoder.end_utt()
        known = set(vocabulary)
        heard = Heard(words=[], ends=[], cmn=str(decoder.get_cmn(False)))
        for segment in decoder.seg() or ():
            word = _ALTERNATE.sub("", str(segment.word))
            if word in known:
                heard.words.append(word)
                heard.ends.append((segment.end_frame + 1) / _FRAMES_PER_SECOND)
        return heard


class _Pool:
    """Idle recognisers of one language, each used by one thread at a time."""

    def __init__(self, spec: _Model) -> None:
        self._spec = spec
        self._idle: list[_Recogniser] = []
        self._lock = threading.Lock()

    @contextmanager
    def recogniser(self) -> Iterator[_Recogniser]:
        """An idle recogniser (a new one when none is idle), given back when the block ends; one whose block
        raised is dropped, not given back (its decoder may be stopped in the middle of an utterance)."""
        with self._lock:
            recogniser = self._idle.pop() if self._idle else None
        if recogniser is None:
            recogniser = _Recogniser(self._spec)
        yield recogniser
        with self._lock:
            self._idle.append(recogniser)

    def size(self) -> int:
        """How many recognisers are idle."""
        with self._lock:
            return len(self._idle)


_POOLS: Final = {name: _Pool(spec) for name, spec in _POCKETSPHINX.items()}


def _hearing(
    recogniser: _Recogniser,
    reference: list[str | None],
    vocabulary: Sequence[str],
    audio: F32,
    *,
    speech: Speech,
    snr: float | None,
    cleaned: bool,
) -> tuple[PhraseCheck, Heard]:
    """What ``audio`` was heard to say against the phrase's ``reference``, and the words as heard."""
    heard = recogniser.recognise(audio, vocabulary) if speech.seconds > 0 else Heard([], [], "")
    errors, matched = align(reference, heard.words, recogniser.same)
    scorable = sum(word is not None for word in reference)
    code_positions = range(len(reference) - CODE_DIGITS, len(reference))
    check = PhraseCheck(
        word_accuracy=round(max(0.0, 1.0 - errors / scorable), 3),
        code_heard=all(position in matched for position in code_positions),
        speech_seconds=round(speech.seconds, 2),
        heard=" ".join(heard.words),
        snr_db=None if snr is None else round(snr, 1),
        cleaned=cleaned,
    )
    return check, heard


def _only_code_missed(check: PhraseCheck) -> bool:
    """Whether ``check`` would say the phrase but for its code: enough speech, enough of the words."""
    return (
        not check.code_heard and check.speech_seconds >= MIN_SPEECH_SECONDS and check.word_accuracy >= MIN_WORD_ACCURACY
    )


def _code_alone(
    recogniser: _Recogniser, reference: list[str | None], heard: Heard, audio: F32, *, end: float, code: str
) -> bool:
    """Whether the stretch of ``audio`` where the code was said, heard again by a loop over the digits alone, says
    ``code``'s four digits and nothing else. The stretch runs from the end of the last word of the phrase before
    the code that was heard (matched in the alignment) to the end of the speech (``end``, seconds): the
    code ends the phrase. No margin: one taken before the stretch let the tail of "is" be heard as a digit."""
    _, matched = _alignment(reference, heard.words, recogniser.same)
    before = [position for position in matched if position < len(reference) - CODE_DIGITS]
    if not before:
        return False
    start = int(heard.ends[matched[max(before)]] * RATE)
    stretch = audio[start : int(end * RATE)]
    if stretch.size < MIN_CODE_SECONDS * RATE:
        return False
    said = recogniser.recognise(stretch, DIGIT_WORDS, cmn=heard.cmn).words
    return said == [DIGIT_WORDS[DIGITS.index(digit)] for digit in code]


def _rank(check: PhraseCheck) -> tuple[bool, bool, float]:
    """Which of two hearings of one recording is the better: one that says the phrase, then one that heard its code,
    then the higher word accuracy."""
    return refusal(check) is None, check.code_heard, check.word_accuracy


def _gated(audio: F32, speech: Speech) -> F32:
    """``audio`` with its noise gated as a sample's is (`backend.audio.process.reduce_noise`, the noise taken from
    the pauses, or from the recording itself when it has too few)."""
    return reduce_noise(audio, RATE, pauses(audio, RATE, speech))


def _wording(language: str) -> Wording:
    if language not in WORDINGS:
        raise ValueError(f"no consent phrase in language {language!r} (have: {', '.join(WORDINGS)})")
    return WORDINGS[language]


def _check_by_whisper(audio: F32, phrase: Phrase, *, speech: Speech, snr: float | None) -> PhraseCheck:
    """What Whisper makes of ``audio`` against ``phrase``: how likely the phrase's words before its code are said
    (``WHISPER_FLOORS``), and whether each digit of the code is, at its place, the likeliest of the ten by
    ``WHISPER_DIGIT_MARGIN`` (inside the code, the digit before handicapped: ``whisper.REPEAT_HANDICAP``; a reading
    blurred, on purpose or by noise, makes every digit nearly as likely as another, and a near-tie is no digit
    heard; heard with what follows it, not more than ``WHISPER_FOLLOWED_SLACK`` behind the likeliest digit heard
    alone), its last digit expected rather than the phrase's end (``WHISPER_LAST_DIGIT``: one cut out is guessed) and
    no more digits after it (``WHISPER_MORE_DIGITS``: a code may be the start of a longer number read). A recording
    with too little speech to have read the phrase is not heard at all. Heard once: a second hearing with the noise
    gated, as pocketsphinx's has, would double the cost of a reading."""
    wording = WORDINGS[phrase.language]
    at = phrase.text.rfind(wording.code_words(phrase.code))
    if at < 0:
        raise ValueError("the phrase's text does not say its code's four digits as words")
    check = PhraseCheck(
        word_accuracy=0.0,
        code_heard=False,
        speech_seconds=round(speech.seconds, 2),
        heard="",
        snr_db=None if snr is None else round(snr, 1),
    )
    span = speech.span_s()
    if speech.seconds < MIN_SPEECH_SECONDS or span is None:
        return check
    heard_from = int(max(0.0, span[0] - SPEECH_LEAD_SECONDS) * RATE)
    text = phrase.text[:at].rstrip()
    hearing = whisper.shared().hear(
        audio[heard_from:],
        language=phrase.language,
        text=text,
        name=_subject_name(text, wording),
        code=phrase.code,
        wording=wording,
    )
    return msgspec.structs.replace(
        check,
        word_accuracy=_whisper_accuracy(hearing.text_score, WHISPER_FLOORS[phrase.language]),
        code_heard=hearing.heard == phrase.code
        and hearing.margin >= WHISPER_DIGIT_MARGIN
        and hearing.trailing <= WHISPER_FOLLOWED_SLACK
        and hearing.last >= WHISPER_LAST_DIGIT
        and hearing.more <= WHISPER_MORE_DIGITS,
        heard=hearing.heard,
    )


def _subject_name(text: str, wording: Wording) -> str:
    """The subject's name in ``text``, a phrase's words before its code made from ``wording``'s template ("" for
    a text that is not)."""
    before, after = wording.template.split("{code}", 1)[0].split("{name}", 1)
    after = after.rstrip()
    if not (text.startswith(before) and text.endswith(after)) or len(text) < len(before) + len(after):
        return ""
    return text[len(before) : len(text) - len(after)]


def _whisper_accuracy(score: float, floor: float) -> float:
    """A mean log-probability ``score`` on ``word_accuracy``'s scale: 1 for a certain text, ``MIN_WORD_ACCURACY``
    at the language's ``floor``, 0 at twice the floor and under."""
    return round(min(1.0, max(0.0, 1.0 - (1.0 - MIN_WORD_ACCURACY) * score / floor)), 3)


def _reference(phrase: Phrase, recogniser: _Recogniser) -> list[str | None]:
    """The phrase's words as the alignment takes them: a word the dictionary lacks is a gap (None), and a run of
    gaps is one. ``ValueError`` when the text does not end with the code's words."""
    out: list[str | None] = []
    for word in words(phrase.text):
        known = word if word is not None and recogniser.knows(word) else None
        if known is not None or (out and out[-1] is not None) or not out:
            out.append(known)
    code = [DIGIT_WORDS[DIGITS.index(digit)] for digit in phrase.code if digit in DIGITS]
    if len(phrase.code) != CODE_DIGITS or len(code) != CODE_DIGITS or out[-CODE_DIGITS:] != code:
        raise ValueError("the phrase's text does not end with its code's four digits as words")
    return out


def _mono_16k(samples: npt.ArrayLike, rate: int) -> F32:
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, not {rate}")
    array = np.nan_to_num(np.asarray(samples, dtype=np.float32))
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:  # channels and samples
        raise ValueError(f"samples must be (n,) or (channels, n), not of shape {array.shape}")
    return resample(downmix(array), rate, RATE)


def _pcm(audio: F32) -> bytes:
    """16-bit PCM for the decoder, its loudest frames brought to ``LEVEL_DBFS`` (see there)."""
    count = audio.size // _LEVEL_FRAME
    gain = 1.0
    if count:
        frames = audio[: count * _LEVEL_FRAME].reshape(count, _LEVEL_FRAME).astype(np.float64)
        loud = float(np.percentile(np.mean(np.square(frames), axis=1), 99))
        gain = 10 ** (min(LEVEL_DBFS - 10 * np.log10(max(loud, _POWER_FLOOR)), MAX_GAIN_DB) / 20)
    return bytes(np.clip(audio * gain * 32767.0, -32768, 32767).astype("<i2").tobytes())
