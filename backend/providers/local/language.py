"""What the `local` engine can speak: English, read from Latin letters. Checked before a request writes
anything, and again by the engine before it renders, so nothing it cannot speak is ever turned into sound.

Two rules, and no guessing. The voice's language decides which language is spoken: a voice whose language
is not English (say `zh`, enrolled before the engine became English-only) is refused whatever its text
says, and a text is never guessed to be in some language from its words. A voice with no language named
is English, as the engine has always taken it.

The text must be readable: every letter in it a Latin letter. The engine turns letters into English
sounds, so a letter of another script (Chinese, Japanese, Cyrillic, Greek, Arabic, ...) would come out
as English sounds made from foreign letters, or as a silent gap where a word was; one such letter refuses
the whole text. Latin letters with any accent are read ("Zoë", "café", "Łódź", "Ångström"), and so is a
Latin-script text in another language (French, say): that is the voice's language to decide, not the
text's. Digits, punctuation, symbols and emoji are not letters and count neither way (a text of nothing
else is refused later, as having nothing speakable). A letter is Latin when Unicode names it so, or its
compatibility form is (the `fi` ligature, fullwidth letters, the ordinal indicators); modifier letters
(apostrophes, the okina, stress marks) are marks, not letters; the micro sign is read as "micro" ("5 µm").
"""

from __future__ import annotations

import unicodedata
from typing import Final

from backend.providers.base import primary_language
from backend.providers.errors import UnsupportedLanguageError

PROVIDER: Final = "local"
#: The languages the engine speaks, as primary subtags: `en`, `en-US`, `en-GB` ... are all `en`.
LANGUAGES: Final = frozenset({"en"})
#: Letters of another script that the engine reads as words ("µm" is "micrometers").
_READ_AS_WORDS: Final = frozenset("\u00b5")
#: A refusal quotes at most this many of the words it cannot read, each cut to `_QUOTED_CHARS`.
_QUOTED_WORDS: Final = 3
_QUOTED_CHARS: Final = 20


def foreign_words(text: str) -> list[str]:
    """The words of `text` (split at white space) that have a letter that is not Latin, in order."""
    return [word for word in text.split() if any(_is_letter(char) and not _is_latin(char) for char in word)]


def refusal(language: str | None, text: str | None = None) -> UnsupportedLanguageError | None:
    """Why the engine cannot speak `text` in a voice whose language is `language`; None when it can."""
    if language is not None and primary_language(language) not in LANGUAGES:
        return UnsupportedLanguageError.naming(PROVIDER, f"This voice's language is {language!r}", LANGUAGES)
    if text is not None and (foreign := foreign_words(text)):
        quoted = [word if len(word) <= _QUOTED_CHARS else f"{word[:_QUOTED_CHARS]}…" for word in foreign]
        shown = ", ".join(f"“{word}”" for word in quoted[:_QUOTED_WORDS]) + (
            ", …" if len(quoted) > _QUOTED_WORDS else ""
        )
        problem = f"The text has letters that are not Latin ({shown}), which the {PROVIDER} provider cannot read"
        return UnsupportedLanguageError.naming(PROVIDER, problem, LANGUAGES)
    return None


def _is_letter(char: str) -> bool:
    category = unicodedata.category(char)
    return category.startswith("L") and not (
        category == "Lm" and unicodedata.name(char, "").startswith("MODIFIER LETTER")
    )


def _is_latin(char: str) -> bool:
    if char in _READ_AS_WORDS or "LATIN" in unicodedata.name(char, "").split():
        return True
    compatible = [c for c in unicodedata.normalize("NFKC", char) if _is_letter(c)]
    return bool(compatible) and compatible != [char] and all(_is_latin(c) for c in compatible)
