"""The consent phrase in each language: its wording."""

from __future__ import annotations

import pytest

from backend.consents import phrase as module
from backend.consents.languages import WORDINGS
from backend.consents.phrase import phrase_for
from backend.domain.consents import CONSENT_LANGUAGES, SPOKEN_BY_POCKETSPHINX


def test_every_language_offered_has_a_wording_and_a_recogniser() -> None:
    assert set(WORDINGS) == set(CONSENT_LANGUAGES)
    assert set(module._POCKETSPHINX) == SPOKEN_BY_POCKETSPHINX
    assert set(module.WHISPER_FLOORS) == set(CONSENT_LANGUAGES) - SPOKEN_BY_POCKETSPHINX


@pytest.mark.parametrize("language", CONSENT_LANGUAGES)
def test_a_phrase_names_the_subject_and_voicegate_and_ends_with_its_code_in_the_languages_words(language: str) -> None:
    phrase = phrase_for("Ada Lovelace", "4719", language)
    wording = WORDINGS[language]
    assert phrase.language == language
    assert "Ada Lovelace" in phrase.text
    assert "voicegate" in phrase.text
    # The code's words end it, but for Japanese's "desu".
    assert phrase.text.rstrip(".。").removesuffix("です").endswith(wording.code_words("4719"))
    assert wording.template.count("{name}") == wording.template.count("{code}") == 1
    # Every digit is a word of its own, none the same as another's.
    assert len(set(wording.digit_words)) == 10
