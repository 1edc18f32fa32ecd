"""The consent wording a client shows before a sample is stored, by version.

Uploads record `CONSENT_TEXT_VERSION` with every consent; the page shows the wording of that very
version (through `/config.json`), so what a user ticked and what was recorded cannot drift apart.
Old versions stay here: a consent record names its version, and someone may ask what it said.

From `2026-12` a version also words the optional consent to keep the sample for moving the voice to
another provider (`keep_sample`, recorded beside the version it was offered in).
"""

from __future__ import annotations

from typing import Final

from backend.consents.types import ConsentText
from backend.policy.consent import CONSENT_TEXT_VERSION

_CONSENT: Final = (
    "I consent to voicegate storing the voice recording I provide, measuring it, and using it to make a "
    "synthetic voice that sounds like mine and speaks text that I type. The voice in the recording is my "
    "own, or its speaker has agreed to this. I understand that the recording is deleted automatically "
    "after the retention period, and that I can delete the recording and the voice at any time."
)
CONSENT_TEXTS: Final[dict[str, str]] = {"2026-11": _CONSENT, "2026-12": _CONSENT}
#: The optional consent to keep the sample, by the version that offered it.
KEEP_SAMPLE_TEXTS: Final[dict[str, str]] = {
    "2026-12": (
        "Keep my sample so my voice can be moved to another provider: instead of deleting it after the "
        "retention period, voicegate keeps the cleaned copy of my recording for as long as the voice exists, "
        "and uses it only to make the same voice again with another voice provider, or when a provider loses "
        "it. Deleting the voice, or withdrawing this choice, deletes the recording."
    ),
}


def current_consent() -> ConsentText:
    """The wording of the version every upload records today."""
    return ConsentText(
        version=CONSENT_TEXT_VERSION,
        text=CONSENT_TEXTS[CONSENT_TEXT_VERSION],
        keep_sample_text=KEEP_SAMPLE_TEXTS.get(CONSENT_TEXT_VERSION),
    )
