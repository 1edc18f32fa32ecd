"""The consent phrase in each language it is offered in: the sentence, and the ten digits as that language writes
them as words.

Each sentence names the subject and voicegate, says what is consented to (a synthetic voice made from their
recordings, speaking text they type) and ends with "my code is" and the code's four digits as words (Japanese puts
its "desu" after them). English's is checked by pocketsphinx (`backend.consents.phrase`); the others by Whisper
(`backend.consents.whisper`), which weighs each digit of a code as the language's word and as a numeral.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Wording:
    """A language's phrase: ``template`` has ``{name}`` and ``{code}`` (the code's digits as ``digit_words``, with
    ``separator`` between them)."""

    template: str
    digit_words: tuple[str, str, str, str, str, str, str, str, str, str]
    separator: str = ", "

    def code_words(self, code: str) -> str:
        """``code`` (digits) as this language says it, e.g. "4719" as "cuatro, siete, uno, nueve"."""
        return self.separator.join(self.digit_words[int(digit)] for digit in code)


WORDINGS: Final[dict[str, Wording]] = {
    # No word of it sounds like a digit but those the dictionary says are one ("to", "two"): "a" was heard for
    # "eight" and a right reading refused (2 codes in 120 read by hibari; 0 in 120 since).
    "en": Wording(
        "I, {name}, consent to voicegate making my synthetic voice from my recordings, to speak the text I type. "
        "My code is {code}.",
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    ),
    "es": Wording(
        "Yo, {name}, doy mi consentimiento para que voicegate cree mi voz sintética a partir de mis grabaciones, "
        "para decir el texto que yo escriba. Mi código es {code}.",
        ("cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"),
    ),
    "de": Wording(
        "Ich, {name}, willige ein, dass voicegate aus meinen Aufnahmen meine synthetische Stimme erstellt, die den "
        "Text spricht, den ich eingebe. Mein Code ist {code}.",
        ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"),
    ),
    "fr": Wording(
        "Moi, {name}, je consens à ce que voicegate crée ma voix synthétique à partir de mes enregistrements, pour "
        "dire le texte que je tape. Mon code est {code}.",
        ("zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"),
    ),
    "pt": Wording(
        "Eu, {name}, autorizo o voicegate a criar a minha voz sintética a partir das minhas gravações, para falar "
        "o texto que eu digitar. O meu código é {code}.",
        ("zero", "um", "dois", "três", "quatro", "cinco", "seis", "sete", "oito", "nove"),
    ),
    "it": Wording(
        "Io, {name}, acconsento che voicegate crei la mia voce sintetica dalle mie registrazioni, per pronunciare "
        "il testo che scrivo. Il mio codice è {code}.",
        ("zero", "uno", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove"),
    ),
    "zh": Wording(
        "我，{name}，同意voicegate用我的录音制作我的合成声音，来朗读我输入的文字。我的验证码是{code}。",  # noqa: RUF001
        ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九"),
        separator="、",
    ),
    "ja": Wording(
        "私、{name}は、voicegateが私の録音から私の合成音声を作り、私が入力した文章を読み上げることに同意します。"
        "私のコードは{code}です。",
        ("ゼロ", "一", "二", "三", "四", "五", "六", "七", "八", "九"),
        separator="、",
    ),
}
