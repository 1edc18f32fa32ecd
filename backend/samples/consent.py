"""The consent wording a client shows before a sample is stored, by version.

Uploads record `CONSENT_TEXT_VERSION` with every consent; the page shows the wording of that very
version (through `/config.json`), so what a user ticked and what was recorded cannot drift apart.
Old versions stay here: a consent record names its version, and someone may ask what it said.
"""

from __future__ import annotations

from typing import Final

import msgspec

from backend.samples.service import CONSENT_TEXT_VERSION

CONSENT_TEXTS: Final[dict[str, str]] = {
    "2026-11": (
        "I consent to voicegate storing the voice recording I provide, measuring it, and using it to make a "
        "synthetic voice that sounds like mine and speaks text that I type. The voice in the recording is my "
        "own, or its speaker has agreed to this. I understand that the recording is deleted automatically "
        "after the retention period, and that I can delete the recording and the voice at any time."
    ),
}


class ConsentText(msgspec.Struct, frozen=True):
    """A consent wording and the version uploads record when it is agreed to."""

    version: str
    text: str


def current_consent() -> ConsentText:
    """The wording of the version every upload records today."""
    return ConsentText(version=CONSENT_TEXT_VERSION, text=CONSENT_TEXTS[CONSENT_TEXT_VERSION])
