"""The languages a spoken consent's phrase is worded and heard in (`backend.consents.languages` words each; a
consent row keeps its phrase's language)."""

from __future__ import annotations

from typing import Final

#: Every language a phrase is offered in, English first (VOICEGATE_CONSENT_LANGUAGES picks among them).
CONSENT_LANGUAGES: Final = ("en", "zh", "es", "de", "fr", "ja", "pt", "it")
#: The languages pocketsphinx hears (`backend.consents.phrase`); Whisper hears the others.
SPOKEN_BY_POCKETSPHINX: Final = frozenset({"en"})
