"""What voicegate will not speak: a consent's phrase. A consent reading is meant to be its subject's own voice, and
the mark that says speech is voicegate's does not survive a vocoder (docs/consent.md#what-no-mark-survives): so the
text of a synthesis is read before anything is spoken, and

- a text that reads as a consent phrase, whoever it names and whatever its code (`reads_as_consent`: the
  template's own words, at least `TEMPLATE_ACCURACY` of them in order, with or without four digits where the code
  goes), is refused (`ConsentPhraseSpoken`, 422) for every caller alike: the answer depends on the text alone, so it
  tells nobody whether any consent says it;
- a text that says one of the caller's own phrases made in the last `RECENT_S` (open or not: `says_phrase`, half its
  words, or a quarter of them and its code) is refused the same way;
- a text that says another account's phrase that still takes a recording as a reading must (half its words in one
  stretch: `SpokenText.says_whole`) is spoken, and that phrase is withdrawn:
  it lapses now (the consent reads `expired`, an audit event `consent.phrase_withdrawn` says why), so the audio
  made verifies nothing. The caller's answer is the one any other text gets: no oracle of another account's
  phrase, and no way to learn one by trying codes.

Texts are compared as a reader says them (`spoken_words`): accents, case and punctuation dropped, every digit a
word ("4719", "4 7 1 9", "four, seven, one, nine", "cuatro, siete, uno, nueve" and "四、七、一、九" alike), the words
that sound like a digit read as it ("for", "to", "won", "ate", "oh"), and Chinese and Japanese (which put no
spaces between words) cut into their phrases' words, however written, and characters; a text with characters
nobody hears is read with them as nothing and as spaces. What this does not see: a phrase respelled so that a voice
reads it the same ("sevven"; Chinese homophones, 同义 for 同意; Japanese readings beyond the phrase's
words), words run together without spaces, or a phrase said in pieces across several syntheses and joined (a
splice, which the reading's own checks judge).
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from backend.consents.languages import WORDINGS
from backend.consents.phrase import CODE_DIGITS, DIGIT_WORDS, MIN_WORD_ACCURACY, templates
from backend.cpu import CpuExecutor
from backend.db.audit import record_audit
from backend.db.connection import Connection
from backend.db.execute import fetch_all
from backend.db.queries import load_queries
from backend.db.units import Database, become_service
from backend.errors import ConsentPhraseSpoken

_Q = load_queries(Path(__file__).with_suffix(".sql"))

#: How long a phrase counts as its owner's after it is made, whatever became of it (verified, refused, lapsed):
#: a day, well past its time to be read (VOICEGATE_CONSENT_PHRASE_SECONDS, 10 minutes by default), so that waiting
#: for a phrase to lapse, or reading it first, does not make it speakable.
RECENT_S: Final = 86400
#: The share of a template's words and code slots, in order, from which a text reads as a consent phrase: the
#: reading's own `MIN_WORD_ACCURACY`, over the template's words alone (the name not counted). Lower, texts that are
#: no phrase read as one ("I consent to the terms. My code is 1234." reads 0.46).
TEMPLATE_ACCURACY: Final = MIN_WORD_ACCURACY
#: The share of a phrase's words from which a text that also says its code says the phrase: a code is what the
#: reading must hear whole, the words only in half.
CODE_ACCURACY: Final = 0.25
#: The most other words heard between two digits of a code that still say it.
CODE_GAP: Final = 2
#: Words that sound as a digit does: a voice reading them says the digit. English's homophones, and every digit word
#: of the phrases written in Latin letters, accents dropped ("cuatro", "vier", "quatre", "quattro", "quatro"): a
#: voice reading the language says the digit, so a code written in its words is a code (`codes_in`), whatever the
#: language it is written in (the text's language is not known; "un" and "uno" are digits everywhere, as "for" is).
SOUNDS_LIKE: Final = {
    "to": "two",
    "too": "two",
    "for": "four",
    "fore": "four",
    "won": "one",
    "ate": "eight",
    "oh": "zero",
    "o": "zero",
    "nought": "zero",
} | {
    folded: DIGIT_WORDS[digit]
    for wording in WORDINGS.values()
    for digit, word in enumerate(wording.digit_words)
    if re.fullmatch(
        "[a-z]+",
        folded := "".join(
            char for char in unicodedata.normalize("NFD", word.casefold()) if unicodedata.category(char) != "Mn"
        ),
    )
    and folded != DIGIT_WORDS[digit]
}
#: A word of Latin letters, or a run of Chinese or Japanese (hiragana, katakana's letters no hiragana has, the
#: prolonged sound mark, and the CJK ideographs with their extension A and the compatibility block): their
#: punctuation (the middle dot ・ among them) is no part of a word.
_WORD: Final = re.compile(
    r"[a-z]+(?:'[a-z]+)*|[\u3041-\u3096\u309d-\u309f\u30f7-\u30fa\u30fc\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+"
)
#: The digits Chinese and Japanese write as characters: the Chinese phrase's, their financial forms (simplified and
#: traditional), 两/兩 (two), 幺 (one, as codes are read aloud), and U+3007; Japanese's ゼロ is read as a word
#: before them.
_CJK_DIGITS: Final = (
    {word: digit for digit, word in enumerate(WORDINGS["zh"].digit_words)}
    | {char: digit for digit, char in enumerate("零壹贰叁肆伍陆柒捌玖")}
    | {"\u3007": 0, "貳": 2, "參": 3, "陸": 6, "两": 2, "兩": 2, "幺": 1}
)
#: The words of the Chinese and Japanese phrases, each with the other ways it is written (traditional characters;
#: Japanese's in hiragana, as `spoken_words` folds katakana, beside those `_KANA_READINGS` make): a run of those
#: scripts is cut into these words where it holds one (the longest first), and into characters elsewhere. A word
#: then counts once, as a word of another language's phrase does: counted by its characters, a text that shares a
#: few long words with the phrase (录音, 合成声音: "an app that makes your synthetic voice from your recordings")
#: read as it.
_CJK_WORDS: Final = {
    # Chinese ("我的", "my", one word as the other languages' is).
    "我的": (),
    "同意": (),
    "录音": ("錄音",),
    "制作": ("製作",),
    "合成": (),
    "声音": ("聲音",),
    "来": ("來",),
    "朗读": ("朗讀",),
    "输入": ("輸入",),
    "文字": (),
    "验证码": ("驗證碼",),
    # Japanese.
    "私の": ("わたしの", "わたくしの"),
    "私": ("わたし", "わたくし"),
    "録音": (),
    "から": (),
    "音声": (),
    "作り": ("造り",),
    "入力": (),
    "した": (),
    "文章": (),
    "読み上げる": ("読上げる",),
    "こと": ("事",),
    "します": (),
    "こーど": (),
    "です": (),
}
#: How the Japanese phrase's kanji are read there, long vowels also as a reader may write them (ー): a word is
#: written with any of its kanji in kana ("ろく音", "ごーせー").
_KANA_READINGS: Final = {
    "録": ("ろく",),
    "音": ("おん",),
    "合": ("ごう", "ごー"),
    "成": ("せい", "せー"),
    "声": ("せい", "せー"),
    "作": ("つく",),
    "入": ("にゅう", "にゅー"),
    "力": ("りょく",),
    "文": ("ぶん",),
    "章": ("しょう", "しょー"),
    "読": ("よ",),
    "上": ("あ",),
    "同": ("どう", "どー"),
    "意": ("い",),
}
_CJK_FORMS: Final = {
    "".join(spelling): word
    for word, others in _CJK_WORDS.items()
    for form in (word, *others)
    for spelling in itertools.product(*((char, *_KANA_READINGS.get(char, ())) for char in form))
}
#: A word of `_CJK_FORMS` (the longest that fits, as the alternation tries them in order) or a character.
_CJK_PIECE: Final = re.compile("|".join(map(re.escape, sorted(_CJK_FORMS, key=len, reverse=True))) + "|.")
#: Katakana's letters to hiragana's (ア to あ, ヽ to ゝ): Japanese writes a word in either.
_TO_HIRAGANA: Final = {code: code - 0x60 for code in (*range(0x30A1, 0x30F7), 0x30FD, 0x30FE)}
#: Kana's voicing marks, which make が of か: the combining marks `spoken_words` keeps.
_KANA_VOICING: Final = frozenset("\u3099\u309a")
#: Characters nobody hears that are no format character: the combining grapheme joiner, Hangul's fillers, Khmer's
#: inherent vowels, Mongolian's variation selectors, and the variation selectors.
_SILENT: Final = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)
#: Katakana's prolonged sound mark where it lengthens no kana (after an ideograph, or another mark): silent.
_LONE_PROLONGING: Final = re.compile(r"(?<![\u3041-\u3096\u30f7-\u30fa])\u30fc")
_DIGIT_SET: Final = frozenset(DIGIT_WORDS)
_DIGIT_VALUES: Final = {word: number for number, word in enumerate(DIGIT_WORDS)}
#: A reference slot that any digit fills: where a template's code goes.
_ANY_DIGIT: Final = "<digit>"


def spoken_readings(text: str) -> list[list[str]]:
    """The ways ``text`` may be read (`spoken_words`): a character nobody hears (a zero-width space, a joiner, a
    variation selector...) may stand inside a word or between two, so a text that has one is read both ways."""
    words = spoken_words(text)
    if not any(_silent(char) for char in text):
        return [words]
    return [words, spoken_words(text, silent=" ")]


#: What no voice says that is no format character: the braille blank, the object replacement and replacement
#: characters; and, by category, private-use, unassigned and surrogate code points (`_silent`). Read as a space
#: alone, one inside each word hid a whole phrase from the comparison.
_UNSPOKEN: Final = frozenset("\u2800\ufffc\ufffd")
#: Letters of other alphabets that look like Latin ones (Cyrillic, Greek, Armenian, and Latin's own small capitals and
#: IPA letters), capital and small, as `spoken_words` folds them in a word that holds them with Latin letters, or
#: holds nothing else ("Lovelace" with its o Cyrillic, U+043E; "MY" with a Greek capital upsilon): a voice reads
#: them as the Latin letter, and the comparison, which keeps a-z, read such a word as two. Unicode's confusables
#: (UTS #39) are more: what they hold beyond these is not folded.
_LOOK_ALIKES: Final = str.maketrans(
    "\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0423\u0430\u0435\u043e\u0440"
    "\u0441\u0443\u0445\u0456\u0458\u0455\u04bb\u0501\u051b\u051d\u04cf\u043a\u0442\u043c\u043d\u0432"
    "\u04af\u04bd\u0475\u0461\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4"
    "\u03a5\u03a7\u03b1\u03bf\u03c1\u03b9\u03ba\u03bd\u03c5\u03c7\u03b5\u03c4\u03b3\u03f2\u03f3\u0585"
    "\u0578\u0570\u057d\u0581\u0251\u0269\u026a\u025b\u0261\u029f\u1d0f\u1d04\u1d1c\u1d07\u1d1b\u0280"
    "\u0274\u1d0d\u028f\u1d00\u0299\u1d05\u0262\u029c\u1d0a\u1d0b\u1d18\ua731\u1d20\u1d21\u1d22\u0131"
    "\u0142\u0237\u0141",
    "ABEKMHOPCTXYaeopcyxijshdqwlktmhbyevwABEZHIKMNOPTYXaopikvuxetycjonhugaiieglocuetrnmyabdghjkpsvwziljL",
)
#: A word of letters of those alphabets (`_unmixed` folds one whose letters look Latin).
_ALPHABETIC_WORD: Final = re.compile(
    "[A-Za-z\u0100-\u024f\u0250-\u02af\u0370-\u03ff\u0400-\u052f\u0530-\u058f\u1d00-\u1d7f\ua720-\ua7ff]+"
)


def _unmixed(word: re.Match[str]) -> str:
    """A word with `_LOOK_ALIKES` folded when it holds them with Latin letters, or (two letters or more) holds
    nothing else; any other as it is (a Russian word stays Russian)."""
    text = word.group()
    if text.isascii():
        return text
    folded = text.translate(_LOOK_ALIKES)
    latin = any(char.isascii() for char in text)
    return folded if latin or (len(text) > 1 and folded.isascii()) else text


def _silent(char: str) -> bool:
    return char in _SILENT or char in _UNSPOKEN or unicodedata.category(char) in {"Cf", "Co", "Cn", "Cs"}


def spoken_words(text: str, *, silent: str = "") -> list[str]:
    """``text`` as a reader says it: lowercase words, accents and punctuation dropped, each digit a word of its own,
    a word that sounds like a digit read as that digit, and Chinese and Japanese (which put no spaces between words)
    cut into the words of their phrases (`_CJK_WORDS`, however written) and characters; what nobody hears (format
    characters, `_SILENT`) read as ``silent``."""
    compatible = unicodedata.normalize("NFKC", text).translate(_TO_HIRAGANA).replace("\u2019", "'").replace("ぜろ", "0")
    spelled = "".join(
        f" {DIGIT_WORDS[unicodedata.digit(char) if char.isdigit() else _CJK_DIGITS[char]]} "
        if char.isdigit() or char in _CJK_DIGITS
        else char
        for char in compatible
    )
    decomposed = unicodedata.normalize("NFD", spelled)
    kept = "".join(
        silent
        if _silent(char)
        else ""
        if char not in _KANA_VOICING and unicodedata.category(char) in {"Mn", "Me"}
        else char
        for char in decomposed
    )
    unmixed = _ALPHABETIC_WORD.sub(_unmixed, unicodedata.normalize("NFC", kept))
    plain = _LONE_PROLONGING.sub("", unmixed.casefold())
    out: list[str] = []
    # Chinese or Japanese is read on across what separates it but other words and digits (spaces, punctuation, a
    # middle dot between every character): nobody hears those.
    run = ""
    for word in _WORD.findall(plain):
        if word[0] >= "\u3041":
            run += word
            continue
        out += _cjk_words(run)
        run = ""
        out.append(SOUNDS_LIKE.get(word, word))
    return out + _cjk_words(run)


def _cjk_words(run: str) -> list[str]:
    """A run of Chinese or Japanese cut into `_CJK_WORDS` (each as its first form), the longest first from the
    left, and characters between them."""
    return [_CJK_FORMS.get(piece, piece) for piece in _CJK_PIECE.findall(run)]


def fewest_errors(reference: Sequence[str | None], heard: Sequence[str], required: range = range(0)) -> int:
    """The fewest substitutions, deletions and insertions that turn ``reference`` into a stretch of ``heard`` (words
    before and after the stretch are free), as `backend.consents.phrase.align` counts them; None in ``reference`` is a
    gap that takes any words at no cost, and `_ANY_DIGIT` matches any digit word. The words of ``reference`` at
    ``required`` must be said in the stretch: one that is not costs more than all of ``reference``."""
    return _Table(heard).fewest_errors(reference, required)


def accuracy(reference: Sequence[str | None], heard: Sequence[str], required: range = range(0)) -> float:
    """1 - errors / the reference's words (its gaps not counted), as a reading is scored (``required`` as
    `fewest_errors` takes it)."""
    return _Table(heard).accuracy(reference, required)


class _Table:
    """A text's words as numbers, for the alignment's table (`fewest_errors`): made once for a text that is compared
    with many phrases. One row of the table at a time, in numpy: a text of thousands of words against a phrase
    costs about a millisecond."""

    def __init__(self, heard: Sequence[str]) -> None:
        self._ids = {word: number for number, word in enumerate(sorted(set(heard)))}
        self._said = np.array([self._ids[word] for word in heard], dtype=np.int64)
        self._digits = np.isin(self._said, [self._ids[word] for word in _DIGIT_SET if word in self._ids])

    def fewest_errors(self, reference: Sequence[str | None], required: range = range(0)) -> int:
        """`fewest_errors` of ``reference`` and this text."""
        columns = np.arange(self._said.size + 1)
        row = np.zeros(self._said.size + 1, dtype=np.int64)  # the stretch may start anywhere
        for at, word in enumerate(reference):
            if word is None:
                row = np.minimum.accumulate(row)
                continue
            miss = len(reference) + 1 if at in required else 1
            matches = self._digits if word == _ANY_DIGIT else self._said == self._ids.get(word, -1)
            best = row + miss  # the word not said
            best[1:] = np.minimum(best[1:], row[:-1] + np.where(matches, 0, miss))
            row = np.minimum.accumulate(best - columns) + columns  # words said that are not the phrase's
        return int(row.min())

    def accuracy(self, reference: Sequence[str | None], required: range = range(0)) -> float:
        """`accuracy` of ``reference`` and this text."""
        scorable = sum(word is not None for word in reference)
        return max(0.0, 1.0 - self.fewest_errors(reference, required) / scorable) if scorable else 0.0


def template_words(template: str) -> list[str | None]:
    """A phrase template's words as `reads_as_consent` compares a text with them: its name a gap (None) and its code
    four slots for any digit."""
    out: list[str | None] = []
    for part in re.split(r"(\{name\}|\{code\})", template):
        if part == "{name}":
            out.append(None)
        elif part == "{code}":
            out.extend([_ANY_DIGIT] * CODE_DIGITS)
        else:
            out.extend(spoken_words(part))
    return out


#: Of a template's words (its name and code left out), the fewest that make it one compared here: a template of
#: fewer would take too many texts for a phrase. Every language's has more (Chinese's and Japanese's counted in
#: `_CJK_WORDS` and characters); the bound keeps a new language's short template out.
MIN_TEMPLATE_WORDS: Final = 10
#: The templates a text is compared with: each language's.
TEMPLATES: Final = tuple(
    words
    for words in map(template_words, templates())
    if sum(word not in (None, _ANY_DIGIT) for word in words) >= MIN_TEMPLATE_WORDS
)
#: Each template's words and code slots, counted.
_TEMPLATE_COUNTS: Final = tuple(Counter(word for word in template if word is not None) for template in TEMPLATES)


def reads_as_consent(words: Sequence[str]) -> bool:
    """Whether ``words`` (`spoken_words`) read as a consent phrase of any name and code: at least
    `TEMPLATE_ACCURACY` of a template's words and code slots, in order, in one stretch."""
    if not words:
        return False
    heard = Counter(words)
    digits = sum(heard[word] for word in _DIGIT_SET)
    table: _Table | None = None  # the text's words as numbers, made once for every template that needs them
    for template, counts in zip(TEMPLATES, _TEMPLATE_COUNTS, strict=True):
        # A slot no word of the text can fill is an error whatever the alignment: a text that cannot reach the
        # accuracy even so (every text spoken but a phrase) is answered without the alignment's table, on the event
        # loop of every speech stream's opening.
        fillable = sum(min(n, digits if word == _ANY_DIGIT else heard[word]) for word, n in counts.items())
        if fillable < TEMPLATE_ACCURACY * counts.total():
            continue
        table = table or _Table(words)
        if table.accuracy(template) >= TEMPLATE_ACCURACY:
            return True
    return False


def codes_in(words: Sequence[str]) -> set[str]:
    """Every code of `CODE_DIGITS` digits ``words`` say in order, at most `CODE_GAP` other words between two of them
    (a superset of what a reading would hear as a code). In numpy, a pass for each way of stepping from a digit to
    the next (each step is to one of the next `CODE_GAP` + 1 digits, as words between are at most that many): a
    text of 15,000 digits, which says every code, takes milliseconds on the event loop, where following each path
    in Python took half a second."""
    said = [(at, _DIGIT_VALUES[word]) for at, word in enumerate(words) if word in _DIGIT_VALUES]
    if len(said) < CODE_DIGITS:
        return set()
    places = np.array([at for at, _ in said])
    values = np.array([value for _, value in said])
    found: set[int] = set()
    for steps in itertools.product(range(1, CODE_GAP + 2), repeat=CODE_DIGITS - 1):
        chosen = [np.arange(len(said) - sum(steps))]
        for step in steps:
            chosen.append(chosen[-1] + step)
        near = np.all(
            [places[after] - places[before] <= CODE_GAP + 1 for before, after in itertools.pairwise(chosen)], axis=0
        )
        code = np.zeros(len(chosen[0]), dtype=np.int64)
        for index in chosen:
            code = code * 10 + values[index]
        found.update(np.unique(code[near]).tolist())
    return {f"{code:0{CODE_DIGITS}d}" for code in found}


def says_phrase(words: Sequence[str], phrase: str, code: str) -> bool:
    """Whether ``words`` (`spoken_words`) say ``phrase`` as its owner's text is held to: `MIN_WORD_ACCURACY` of its
    words in one stretch, or its code (four digits in order) and `CODE_ACCURACY` of them."""
    return SpokenText(words).says(phrase, code, codes_in(words))


class SpokenText:
    """A text's words (`spoken_words`) made ready once to be compared with every phrase it may say: how often it says
    each word, and its words as numbers for the alignment. A phrase whose words the text cannot fill in the share
    needed, however they are aligned, is answered without the alignment: a text that says thousands of codes is
    compared with every open phrase that has one of them."""

    def __init__(self, words: Sequence[str]) -> None:
        self._counts = Counter(words)
        self._table = _Table(words)

    def says(self, phrase: str, code: str, codes: set[str]) -> bool:
        """`says_phrase`, ``codes`` the codes the text says (`codes_in`): how the caller's own phrase is held."""
        reference, _ = _phrase_words(phrase, code)
        needed = CODE_ACCURACY if code in codes else MIN_WORD_ACCURACY
        return self._fillable(reference) >= needed * len(reference) and self._table.accuracy(reference) >= needed

    def says_whole(self, phrase: str, code: str) -> bool:
        """Whether the text says `MIN_WORD_ACCURACY` of ``phrase``'s words in one stretch with its code in it, where
        the phrase says it, as a reading of it must: how another account's phrase is held. Less would take a
        splice with other audio to pass a reading, which the reading's own checks judge. A quarter of the words
        with the code let one text of short stretches ("We type. My code is 59536533.", again and again) say half
        the open phrases of a language, and half of them with the code anywhere (2 characters of a Chinese name, 10
        of the template, then one block of digits for every stretch) a fifth of Chinese's."""
        reference, code_at = _phrase_words(phrase, code)
        return self._fillable(reference) >= MIN_WORD_ACCURACY * len(reference) and (
            self._table.accuracy(reference, code_at) >= MIN_WORD_ACCURACY
        )

    def _fillable(self, reference: Sequence[str]) -> int:
        return sum(min(count, self._counts[word]) for word, count in Counter(reference).items())


@functools.lru_cache(maxsize=4096)
def _phrase_words(phrase: str, code: str) -> tuple[tuple[str, ...], range]:
    """A phrase's `spoken_words`, and where in them its code is said (the last place its four digits are; every
    word, for a phrase that does not say it), kept: the open phrases are the same from one text to the next."""
    words = tuple(spoken_words(phrase))
    digits = tuple(DIGIT_WORDS[int(digit)] for digit in code)
    starts = [at for at in range(len(words) - len(digits) + 1) if words[at : at + len(digits)] == digits]
    return words, range(starts[-1], starts[-1] + len(digits)) if starts else range(len(words) + 1)


#: Texts up to this long are read on the event loop (a sentence 0.2 ms; 200 digits after a zero-width space, read
#: twice, 7 ms at worst); a longer one, up to 5,000 characters and 83 ms, on the CPU executor in its owner's lane.
LOOP_TEXT_CHARS: Final = 200


@dataclass(frozen=True)
class PhrasesSaid:
    """What a text to speak says of the phrases there are (`phrases_said`): other accounts' open phrases, which
    lapse with the synthesis (`withdraw_phrases`)."""

    others: tuple[uuid.UUID, ...] = ()


async def phrases_said(db: Database, cpu: CpuExecutor, owner_id: uuid.UUID, text: str) -> PhrasesSaid:
    """Before ``text`` is spoken for ``owner_id``, outside the transaction that accepts it: ConsentPhraseSpoken (422)
    when it reads as a consent phrase, or says one of the owner's phrases made in the last `RECENT_S`; else the other
    accounts' open phrases it says. The phrases with a code the text says are read in one statement as the service
    (they are every account's), and compared with the text on ``cpu`` in the owner's lane, no connection held while
    that waits: a text that says thousands of codes is compared with every open phrase, a millisecond or two each,
    and a transaction left idle that long is ended by the server. Reading them before the transaction misses none
    that matter: a phrase's code is known only once the phrase is stored, so any phrase a text says was there
    before the text was written."""
    if len(text) > LOOP_TEXT_CHARS:
        readings, codes = await cpu.run(owner_id, _read, text)
    else:
        readings, codes = _read(text)
    if not codes:
        return PhrasesSaid()
    query = {"codes": sorted(codes), "owner_id": owner_id, "recent_seconds": RECENT_S}
    async with db.service_statement() as conn:
        rows = await fetch_all(conn, _Q["phrases_with_codes"], query)
    said = await cpu.run(owner_id, _said, readings, rows, codes, owner_id) if rows else []
    if any(row["owner_id"] == owner_id and row["recent"] for row in said):
        raise ConsentPhraseSpoken
    return PhrasesSaid(tuple(row["id"] for row in said if row["owner_id"] != owner_id and row["open"]))


async def withdraw_phrases(conn: Connection, said: PhrasesSaid) -> None:
    """On the transaction that accepts the text (it commits with the synthesis, or not at all): the phrases ``said``
    names that still take a recording lapse now, each with an audit event. Switches ``conn`` to the service role
    when there are any: they are other accounts'."""
    if not said.others:
        return
    await become_service(conn)
    for phrase_id in said.others:
        if await fetch_all(conn, _Q["withdraw_phrase"], {"id": phrase_id}):
            detail = {"reason": "spoken_by_voicegate"}
            await record_audit(
                conn, "consent-check", "consent.phrase_withdrawn", "voice_consent", phrase_id, detail=detail
            )


def _read(text: str) -> tuple[list[list[str]], set[str]]:
    """``text``'s readings (`spoken_readings`) and the codes they say; ConsentPhraseSpoken when one reads as a
    consent phrase."""
    readings = spoken_readings(text)
    if any(map(reads_as_consent, readings)):
        raise ConsentPhraseSpoken
    return readings, set().union(*map(codes_in, readings))


def _said(
    readings: list[list[str]], rows: list[dict[str, Any]], codes: set[str], owner_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The ``rows`` (`phrases_with_codes`) that one of a text's ``readings`` says, ``codes`` the codes they say: the
    owner's as `SpokenText.says` holds them, another account's as `SpokenText.says_whole` does."""
    spoken = [SpokenText(words) for words in readings]
    return [
        row
        for row in rows
        if any(
            words.says(row["phrase"], row["code"], codes)
            if row["owner_id"] == owner_id
            else words.says_whole(row["phrase"], row["code"])
            for words in spoken
        )
    ]
