"""The text rule that keeps voicegate from speaking a consent phrase (`backend.consents.spoken_text`): a text is
compared as a reader says it, reads as a consent phrase whoever it names and whatever its code, says a given phrase
when it says its code and a quarter of its words (or half of them without the code); and the texts voicegate's
own tests, benchmarks and page speak are none of these."""

from __future__ import annotations

import csv
import functools
import random
import re
import time
import uuid
from pathlib import Path
from typing import cast

import pytest

from backend.clone.preview_step import PREVIEW_TEXT
from backend.consents.languages import WORDINGS
from backend.consents.phrase import CODE_DIGITS, DIGIT_WORDS, MIN_WORD_ACCURACY, align, make_phrase, phrase_for
from backend.consents.spoken_text import (
    CODE_ACCURACY,
    CODE_GAP,
    TEMPLATE_ACCURACY,
    TEMPLATES,
    SpokenText,
    accuracy,
    codes_in,
    fewest_errors,
    phrases_said,
    reads_as_consent,
    says_phrase,
    spoken_readings,
    spoken_words,
)
from backend.cpu import CpuExecutor
from backend.db.units import Database
from backend.errors import ConsentPhraseSpoken
from devkit.speech_maker import SENTENCES

PHRASE = phrase_for("Ada Lovelace", "4719")
with (Path(__file__).parents[2] / "clips" / "languages" / "SOURCES.tsv").open(encoding="utf-8") as _sources:
    #: What the Chinese and Japanese recordings of the tests say.
    CJK_TRANSCRIPTS = [
        row["transcript"]
        for row in csv.DictReader(_sources, delimiter="\t")
        if row["language"] in {"zh", "ja"} and row["transcript"]
    ]


def test_a_text_is_read_as_a_reader_says_it() -> None:
    assert spoken_words("My code is 4719.") == ["my", "code", "is", "four", "seven", "one", "nine"]
    assert spoken_words("Zoë's code: for, 7, won, NINE!") == ["zoe's", "code", "four", "seven", "one", "nine"]
    assert spoken_words("Call 0 oh eight") == ["call", "zero", "zero", "eight"]
    full_width = "".join(chr(0xFF10 + int(digit)) for digit in "4719")
    assert spoken_words(full_width) == ["four", "seven", "one", "nine"]
    # Said, not seen: a zero-width space or a soft hyphen in a word, a variation selector.
    assert spoken_words("con\u200bsent via voice\u00adgate\ufe0f") == ["consent", "via", "voicegate"]
    # Chinese and Japanese: cut into their phrases' words, however written, and characters; numerals are digits.
    assert spoken_words("我的验证码是四、七、一、九。") == ["我的", "验证码", "是", "four", "seven", "one", "nine"]
    assert spoken_words("我的驗證碼是肆柒壹幺") == ["我的", "验证码", "是", "four", "seven", "one", "one"]
    assert spoken_words("コードはゼロ、\u3007、零、ぜろです") == [
        "こーど",
        "は",
        "zero",
        "zero",
        "zero",
        "zero",
        "です",
    ]
    assert spoken_words("わたしの・ロクオン") == spoken_words("私の録音") == ["私の", "録音"]
    assert spoken_words("ゴーセーオンセー") == spoken_words("合成音声") == ["合成", "音声"]


def test_the_codes_a_text_says_are_its_digits_in_order_with_at_most_two_words_between() -> None:
    assert codes_in(spoken_words("my code is four, seven, one, nine")) == {"4719"}
    assert "4719" in codes_in(spoken_words("four, um, seven, er, one and nine"))
    assert "4719" not in codes_in(spoken_words("four and then later seven, one and nine"))
    assert codes_in(spoken_words("no digits here at all")) == set()


@pytest.mark.parametrize(
    "text",
    [
        PHRASE.text,
        make_phrase("Grace Hopper").text,
        "I, someone else entirely, consent to voicegate making my synthetic voice from my recordings, to speak the"
        " text I type. My code is 1, 2, 3, 4.",
        # The phrase without its code: the piece a splice would take its words from.
        "I consent to voicegate making my synthetic voice from my recordings, to speak the text I type.",
        "Hello. " * 50 + PHRASE.text + " Goodbye." * 50,
    ],
)
def test_a_text_that_reads_as_a_consent_phrase_is_one_whoever_it_names(text: str) -> None:
    assert reads_as_consent(spoken_words(text))


@pytest.mark.parametrize(
    "text",
    [
        *SENTENCES,
        PREVIEW_TEXT,
        "I consent to the terms. My code is 1234.",
        "Call me at 555 4719 tomorrow, my code is on the card.",
        "My voice, my recordings and my text are mine to speak.",
    ],
)
def test_texts_that_are_no_consent_phrase_are_not_taken_for_one(text: str) -> None:
    words = spoken_words(text)

    assert not reads_as_consent(words)
    assert not says_phrase(words, PHRASE.text, PHRASE.code)


@pytest.mark.parametrize("silent", ["\u200b", "\u2060", "\u180e", "\u3164", "\ufe0f"])
def test_a_character_nobody_hears_is_read_as_nothing_and_as_a_space(silent: str) -> None:
    inside = PHRASE.text.replace("consent", f"con{silent}sent").replace("voicegate", f"voice{silent}gate")
    between = silent.join(PHRASE.text.split(" "))

    for text in (inside, between, PHRASE.text.replace("o", "o" + silent)):
        assert any(map(reads_as_consent, spoken_readings(text))), text
    assert spoken_readings("no such character") == [spoken_words("no such character")]


def test_a_text_says_a_phrase_with_its_code_and_a_quarter_of_its_words() -> None:
    said = spoken_words("Ada Lovelace. My code is for, 7, won, nine.")
    wrong_code = spoken_words("Ada Lovelace. My code is four, seven, one, eight.")

    assert not reads_as_consent(said), "too little of the wording to read as any phrase"
    assert says_phrase(said, PHRASE.text, PHRASE.code)
    assert not says_phrase(wrong_code, PHRASE.text, PHRASE.code)
    assert not says_phrase(spoken_words("four seven one nine"), PHRASE.text, PHRASE.code)


def test_a_long_name_that_carries_the_phrase_is_still_its_phrase() -> None:
    # A name chosen to carry the words, with few of the template's: the template rule does not see it, the
    # phrase's own does.
    phrase = phrase_for("the quick brown fox jumps over the lazy dog again and again", "0451")
    text = spoken_words("I, the quick brown fox jumps over the lazy dog again and again. My code is 0451.")

    assert not reads_as_consent(text)
    assert says_phrase(text, phrase.text, phrase.code)


def test_fewest_errors_counts_as_the_readings_alignment_does() -> None:
    rng = random.Random(5)  # noqa: S311 - reproducible cases, no secret
    vocabulary = ["a", "b", "c", "d", "e"]
    same = str.__eq__
    for _ in range(300):
        reference: list[str | None] = [rng.choice([*vocabulary, None]) for _ in range(rng.randint(1, 8))]
        heard = [rng.choice(vocabulary) for _ in range(rng.randint(0, 12))]
        errors, _ = align(reference, heard, same)

        assert fewest_errors(reference, heard) == errors, (reference, heard)


def test_the_codes_of_a_text_are_every_path_through_its_digits() -> None:
    """`codes_in` steps through the digits in numpy: on random texts it finds what following every path finds, and
    a text of 15,000 digits (5,000 characters NFKC makes three each) is quick."""

    def paths(words: list[str]) -> set[str]:
        places = [(at, str(DIGIT_WORDS.index(word))) for at, word in enumerate(words) if word in DIGIT_WORDS]
        found: set[str] = set()
        stack = [(start, places[start][1]) for start in range(len(places))]
        while stack:
            index, code = stack.pop()
            if len(code) == CODE_DIGITS:
                found.add(code)
                continue
            for following in range(index + 1, min(index + CODE_GAP + 2, len(places))):
                if places[following][0] - places[index][0] <= CODE_GAP + 1:
                    stack.append((following, code + places[following][1]))
        return found

    rng = random.Random(3)  # noqa: S311 - reproducible cases, no secret
    vocabulary = [*DIGIT_WORDS, "and", "then"]
    for _ in range(2000):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(0, 16))]
        assert codes_in(words) == paths(words), words
    # 5,000 characters NFKC makes three digits each (1, 1, 0), then 5,000 digits: every code.
    words = spoken_words("\u2152" * 5000 + "".join(rng.choice("0123456789") for _ in range(5000)))
    started = time.perf_counter()
    codes = codes_in(words)
    elapsed = time.perf_counter() - started

    assert len(words) == 20000
    assert codes == paths(words)
    assert len(codes) == 10**CODE_DIGITS
    assert elapsed < 1.0, elapsed  # following every path in Python took 0.5 s for 15,000 digits


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_text_reads_as_consent_exactly_when_the_alignment_says_so(template: list[str | None]) -> None:
    """`reads_as_consent` answers most texts without the alignment's table: on texts made from a template's words
    and some others, cut, changed and shuffled around the threshold, its answer is the table's."""
    rng = random.Random(11)  # noqa: S311 - reproducible cases, no secret
    words = [word for word in template if word is not None and word != "<digit>"]
    others = ["thanks", "calling", "weather", "today"]
    answers = set()
    for _ in range(1000):
        text = [rng.choice(["ada", "two", "nine"]) if word is None or word == "<digit>" else word for word in template]
        # Half the texts have only words changed: every change one error and one slot unfillable, the bound tight.
        kinds = ["change"] if rng.random() < 0.5 else ["cut", "change", "add", "swap"]
        for _ in range(rng.randint(0, len(template))):
            at = rng.randrange(len(text) + 1)
            edit = rng.choice(kinds)
            if edit == "cut" and text:
                del text[min(at, len(text) - 1)]
            elif edit == "change" and text:
                text[min(at, len(text) - 1)] = rng.choice(others)
            elif edit == "add":
                text.insert(at, rng.choice([*others, *words]))
            elif text:
                other = rng.randrange(len(text))
                mine = min(at, len(text) - 1)
                text[mine], text[other] = text[other], text[mine]
        expected = accuracy(template, text) >= TEMPLATE_ACCURACY
        assert reads_as_consent(text) == expected, text
        answers.add(expected)
    assert answers == {True, False}


def test_required_words_must_be_said_in_the_stretch() -> None:
    """`fewest_errors` with words required: on small random cases, what trying every stretch and every alignment
    finds, a required word left unsaid costing more than the whole reference."""

    def errors(reference: list[str], heard: list[str], required: range) -> int:
        miss = len(reference) + 1

        @functools.cache
        def cost(i: int, j: int, end: int) -> int:  # reference[i:] against heard[j:end]
            if i == len(reference):
                return end - j
            unsaid = miss if i in required else 1
            best = unsaid + cost(i + 1, j, end)
            if j < end:
                best = min(best, cost(i, j + 1, end) + 1)
                best = min(best, cost(i + 1, j + 1, end) + (0 if reference[i] == heard[j] else unsaid))
            return best

        return min(cost(0, start, end) for start in range(len(heard) + 1) for end in range(start, len(heard) + 1))

    rng = random.Random(17)  # noqa: S311 - reproducible cases, no secret
    vocabulary = ["a", "b", "c", "d"]
    for _ in range(300):
        reference = [rng.choice(vocabulary) for _ in range(rng.randint(1, 7))]
        heard = [rng.choice(vocabulary) for _ in range(rng.randint(0, 9))]
        first = rng.randrange(len(reference))
        required = range(first, rng.randint(first, len(reference)))

        assert fewest_errors(reference, heard, required) == errors(reference, heard, required), (reference, heard)


def test_half_a_phrase_with_its_code_elsewhere_is_no_other_accounts_phrase() -> None:
    """Two characters of a common Chinese given name and the template's next ten, again and again, and one block of
    digits for all of them: half of many phrases' words, and every code, but no code where a phrase says it (a
    helper's attack withdrew a fifth of the open Chinese phrases so)."""
    rng = random.Random(23)  # noqa: S311 - reproducible cases, no secret
    names = ["王秀华", "李秀华", "张秀华", "刘秀华", "陈秀华"]
    digits = "".join(rng.choice("0123456789") for _ in range(1200))
    stretch = "秀华同意voicegate用我的录音制作我的合成声音来"
    text = (digits + stretch * 200)[:5000]
    words = spoken_words(text)
    phrases = [phrase_for(rng.choice(names), f"{rng.randrange(10**CODE_DIGITS):04d}", "zh") for _ in range(200)]

    assert not reads_as_consent(words)
    assert sum(SpokenText(words).says_whole(phrase.text, phrase.code) for phrase in phrases) == 0
    whole = phrases[0]
    said = f"{whole.text.split('，')[1]}{stretch}。{whole.text[whole.text.rfind('我的验证码') :]}"  # noqa: RUF001
    assert SpokenText(spoken_words(said)).says_whole(whole.text, whole.code)


def test_a_phrase_is_said_exactly_when_the_alignment_says_so() -> None:
    """`SpokenText` answers a phrase whose words the text cannot fill without the alignment's table (a text that says
    thousands of codes is held to every open phrase): on texts made from phrases' words and digits, cut, changed
    and padded with other digits, its answers are the table's, for the caller's own phrase and another's."""
    rng = random.Random(13)  # noqa: S311 - reproducible cases, no secret
    answers = []
    for _ in range(600):
        code = "".join(rng.choice("0123456789") for _ in range(CODE_DIGITS))
        phrase = phrase_for(rng.choice(["Ada Lovelace", "Grace Brewster Murray Hopper"]), code).text
        reference = spoken_words(phrase)
        text = [word for word in reference if rng.random() < rng.choice([0.3, 0.6, 0.9])]
        for _ in range(rng.randint(0, 15)):
            text.insert(rng.randrange(len(text) + 1), rng.choice([*DIGIT_WORDS, "weather", "today"]))
        codes = codes_in(text)
        score = accuracy(reference, text)
        own = score >= MIN_WORD_ACCURACY or (code in codes and score >= CODE_ACCURACY)

        assert SpokenText(text).says(phrase, code, codes) == own, (phrase, text)
        assert says_phrase(text, phrase, code) == own
        code_at = range(len(reference) - CODE_DIGITS, len(reference))
        whole = accuracy(reference, text, code_at) >= MIN_WORD_ACCURACY
        assert SpokenText(text).says_whole(phrase, code) == whole, (phrase, text)
        answers.append(own)
    assert 0.2 < sum(answers) / len(answers) < 0.8


def test_a_text_of_short_stretches_and_codes_says_no_other_accounts_phrase() -> None:
    """A few of a phrase's last words and a run of digits, again and again, say a quarter of every phrase whose code
    the digits begin with (a helper's attack withdrew 27-69 % of the open phrases of each language with one text):
    another account's phrase is said only by half its words. The caller's own is held to less."""
    rng = random.Random(19)  # noqa: S311 - reproducible cases, no secret
    stretches = " ".join(f"We type. My code is {rng.randrange(10**8):08d}." for _ in range(180))[:5000]
    words = spoken_words(stretches)
    codes = codes_in(words)
    phrases = [phrase_for("John Smith", f"{rng.randrange(10**CODE_DIGITS):04d}") for _ in range(300)]

    others = sum(SpokenText(words).says_whole(phrase.text, phrase.code) for phrase in phrases)
    own = sum(SpokenText(words).says(phrase.text, phrase.code, codes) for phrase in phrases)

    assert not reads_as_consent(words)
    assert others == 0
    assert own > 100, own


@pytest.mark.parametrize("language", ["en", "es", "de", "fr", "pt", "it"])
def test_a_phrase_in_look_alike_letters_still_reads_as_consent(language: str) -> None:
    """Cyrillic o, a, e (U+043E, U+0430, U+0435) in Latin words read as the Latin letters by a voice: a helper's
    attack passed the whole phrase in six languages so. A word wholly in another alphabet is left as it was."""
    phrase = phrase_for("Ada Lovelace", "4719", language).text
    disguised = phrase.translate({ord("o"): "\u043e", ord("a"): "\u0430", ord("e"): "\u0435"})

    assert disguised != phrase
    assert any(map(reads_as_consent, spoken_readings(disguised)))
    assert spoken_words("\u0441\u043f\u0430\u0441\u0438\u0431\u043e") == []


@pytest.mark.parametrize(
    "letters",
    [
        {"o": "\u0585"},  # Armenian oh
        {"T": "\u0422", "M": "\u041c", "Y": "\u03a5", "N": "\u039d"},  # Cyrillic and Greek capitals, the text upper
        {"e": "\u1d07", "t": "\u1d1b", "r": "\u0280", "n": "\u0274"},  # Latin small capitals
    ],
)
def test_a_phrase_in_other_look_alike_letters_still_reads_as_consent(letters: dict[str, str]) -> None:
    """A second attack's letters: Armenian, capitals (Greek capital nu is N, though its small form looks like v),
    Latin small capitals."""
    phrase = phrase_for("Ada Lovelace", "4719").text
    text = phrase.upper() if any(letter.isupper() for letter in letters) else phrase
    disguised = text.translate(str.maketrans(letters))

    assert disguised != text
    assert any(map(reads_as_consent, spoken_readings(disguised)))


@pytest.mark.parametrize("unspoken", ["\ue000", "\ufffc", "\ufffd", "\u2800", "\u0378", "\U0010ffff"])
def test_a_character_no_voice_says_inside_each_word_hides_no_phrase(unspoken: str) -> None:
    """Private-use, unassigned and replacement characters, and the braille blank: one inside each word of the phrase
    split every word in two, and the phrase passed. They are read as nothing, and as a space."""
    phrase = phrase_for("Ada Lovelace", "4719").text
    hidden = re.sub(r"\b(\w\w)(\w)", rf"\1{unspoken}\2", phrase)

    assert hidden != phrase
    assert any(map(reads_as_consent, spoken_readings(hidden)))


@pytest.mark.parametrize("language", sorted(WORDINGS))
def test_a_code_in_the_languages_own_words_is_a_code(language: str) -> None:
    """A voice reading "cuatro, siete, uno, nueve" says 4719: a text that writes the code in its language's words
    says the code, and a text of the subject's name and the phrase's last sentence ("Mi código es cuatro, ...")
    says their phrase, as in English."""
    phrase = phrase_for("Ada Lovelace", "4719", language)
    said = "Ada Lovelace. " + [part for part in re.split(r"(?<=[.\u3002])\s*", phrase.text) if part][-1]

    assert codes_in(spoken_words(phrase.text)) == {"4719"}
    assert codes_in(spoken_words(said)) == {"4719"}
    assert not reads_as_consent(spoken_words(said))
    assert says_phrase(spoken_words(said), phrase.text, "4719")


@pytest.mark.parametrize("language", ["es", "de", "fr", "pt", "it"])
def test_a_phrase_in_a_language_written_in_latin_letters_reads_as_consent(language: str) -> None:
    assert reads_as_consent(spoken_words(phrase_for("Ada Lovelace", "4719", language).text))
    # With its code as numerals too.
    assert reads_as_consent(
        spoken_words(phrase_for("Ada Lovelace", "4719", language).text.rsplit(" ", 4)[0] + " 4719.")
    )


@pytest.mark.parametrize("language", ["zh", "ja"])
def test_a_chinese_or_japanese_phrase_reads_as_consent_character_by_character(language: str) -> None:
    text = phrase_for("Ada Lovelace", "4719", language).text
    as_numerals = text.replace("四、七、一、九", "4719")

    assert len(TEMPLATES) == 8
    assert reads_as_consent(spoken_words(text))
    assert reads_as_consent(spoken_words(as_numerals))
    assert codes_in(spoken_words(text)) == {"4719"}
    assert says_phrase(spoken_words(as_numerals), text, "4719")


@pytest.mark.parametrize(
    "text",
    [
        # Written otherwise, read the same: traditional characters and financial numerals; Japanese in kana, in
        # katakana, or mixed; a middle dot or a space between every character.
        "我，王小明，同意voicegate用我的錄音製作我的合成聲音，來朗讀我輸入的文字。我的驗證碼是肆、柒、壹、玖。",  # noqa: RUF001
        "わたし、たなかは、voicegateがわたしのろくおんからわたしのごうせいおんせいをつくり、わたしがにゅうりょくした"
        "ぶんしょうをよみあげることにどういします。わたしのこーどはよん、なな、いち、きゅうです。",
        "ワタシ、タナカハ、voicegateガワタシノロクオンカラワタシノゴウセイオンセイヲツクリ、ワタシガニュウリョクシタ"  # noqa: RUF001
        "ブンショウヲヨミアゲルコトニドウイシマス。",
        "わたし、田中は、voicegateがわたしの録音からわたしの合成音声をつくり、わたしが入力した文章をよみあげることに"
        "どういします。",
        "・".join(phrase_for("Ada Lovelace", "4719", "zh").text),
        " ".join(phrase_for("Ada Lovelace", "4719", "ja").text),
    ],
)
def test_a_chinese_or_japanese_phrase_written_otherwise_still_reads_as_consent(text: str) -> None:
    assert reads_as_consent(spoken_words(text))


@pytest.mark.parametrize("language", ["zh", "ja"])
@pytest.mark.parametrize("silent", ["", "\u200b"])
async def test_a_chinese_or_japanese_phrase_is_refused_before_the_database_is_asked(language: str, silent: str) -> None:
    """The rule every route that speaks a caller's text runs (a voice of a provider that speaks the language: the
    `local` engine refuses their texts first, `language_not_supported`): a text that reads as a phrase is refused
    on its words alone, so no connection is touched."""
    text = silent.join(phrase_for("Grace Hopper", "1234", language).text)

    with pytest.raises(ConsentPhraseSpoken):
        await phrases_said(cast("Database", None), cast("CpuExecutor", None), uuid.uuid4(), text)


@pytest.mark.parametrize(
    "text",
    [
        # Texts that share the phrase's long words (录音, 合成, 声音; 録音, 合成, 音声) but are no consent: each
        # word counts once, as in the other languages, not once a character.
        "这款应用可以用你的录音制作你的合成声音，来朗读你输入的文字。",  # noqa: RUF001
        "私たちのサービスでは、お客様の録音から合成音声を作り、入力した文章を自然に読み上げることができます。",
        "一名男子同意某公司用他的录音制作合成声音",
        # "My" is one word, as in the other languages: the phrase's 我的 and 私の fill no more of it.
        "私は同意します。私の録音も、私の合成音声も、私が入力した文章も、すべて私のものです。",
        # What is said of consent in few words, and a phone number (its digits codes, the text no phrase).
        "我同意用我的录音制作声音。",
        "我同意。我的验证码是1234。",
        "私は同意します。私のコードは一二三四です。",
        "今天天气很好，我们一起去公园散步吧。我的电话号码是一三九一二三四五六七八。",  # noqa: RUF001
        # Real sentences: the transcripts of the recordings in tests/clips/languages, each and all together.
        *CJK_TRANSCRIPTS,
        "".join(CJK_TRANSCRIPTS),
    ],
)
def test_chinese_and_japanese_texts_that_are_no_phrase_are_not_taken_for_one(text: str) -> None:
    words = spoken_words(text)

    assert not reads_as_consent(words)
    assert not says_phrase(words, phrase_for("Ada Lovelace", "4719", "zh").text, "4719")
