"""Enrolment keys: how a voice is tagged at the provider so a lost create is never repeated, and how
such a tag is read back (the reconcile script tells voicegate's voices from others' by it).

Four shapes: ElevenLabs labels carry the key itself; ElevenLabs and Cartesia descriptions carry
`[voicegate:<24 hex digits of sha256(key)>]`; Qwen generates the voice id from a `preferred_name` of
`vg<14 hex digits>`, so the id starts `qwen-tts-vc-vg<14 hex>-voice-`; a self-hosted server's voice is
named `voicegate_<24 hex digits>` (its name is the only field every such server keeps).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from backend.providers.base import ProviderVoice
from backend.providers.errors import UnknownOutcomeError

log = logging.getLogger(__name__)

# Creates retried after an unknown outcome (each one preceded by a lookup that found nothing).
CREATE_ATTEMPTS = 3
#: Hex digits of the key's digest that every tag carries at least (Qwen's names have room for no more).
TAG_DIGITS = 14
_MARKER = re.compile(r"\[voicegate:([0-9a-f]{24})\]")
_QWEN_NAME = re.compile(rf"^qwen-tts-vc-vg([0-9a-f]{{{TAG_DIGITS}}})-voice-")
_SELFHOSTED_NAME = re.compile(r"^voicegate_([0-9a-f]{24})$")


def key_digest(key: str, length: int = 24) -> str:
    """A stable lower-case hex digest of an enrolment key (safe in names, labels and descriptions)."""
    if not key:
        raise ValueError("enrolment key must not be empty")
    return hashlib.sha256(key.encode()).hexdigest()[:length]


def key_marker(key: str) -> str:
    """The marker written into a voice's description, e.g. ``[voicegate:3f2a...]``."""
    return f"[voicegate:{key_digest(key)}]"


def qwen_preferred_name(key: str) -> str:
    """Qwen's ``preferred_name`` for an enrolment key: letters/digits/underscore, 16 characters."""
    return "vg" + key_digest(key, TAG_DIGITS)


def selfhosted_voice_name(key: str) -> str:
    """The name a self-hosted server's voice gets for an enrolment key (letters, digits, underscore)."""
    return f"voicegate_{key_digest(key)}"


@dataclass(frozen=True)
class KeyTag:
    """What a provider voice says about the enrolment key that made it: the key, or a digest prefix."""

    key: str | None = None
    digest: str | None = None

    @property
    def prefix(self) -> str:
        """The first `TAG_DIGITS` hex digits of sha256(key), which every tag determines."""
        return key_digest(self.key, TAG_DIGITS) if self.key is not None else (self.digest or "")[:TAG_DIGITS]

    def matches(self, key: str) -> bool:
        """Whether `key` made this voice."""
        if self.key is not None:
            return key == self.key
        return self.digest is not None and key_digest(key, len(self.digest)) == self.digest


def key_tag(voice: ProviderVoice) -> KeyTag | None:
    """The voice's enrolment-key tag (label, description marker, Qwen or self-hosted name), or None: not ours."""
    if voice.enrolment_key:
        return KeyTag(key=voice.enrolment_key)
    description = voice.metadata.get("description")
    if isinstance(description, str) and (marker := _MARKER.search(description)):
        return KeyTag(digest=marker[1])
    if name := _QWEN_NAME.match(voice.voice_id):
        return KeyTag(digest=name[1])
    for candidate in (voice.voice_id, voice.name or ""):
        if named := _SELFHOSTED_NAME.match(candidate):
            return KeyTag(digest=named[1])
    return None


async def enrol_once(
    key: str,
    find: Callable[[str], Awaitable[ProviderVoice | None]],
    create: Callable[[], Awaitable[ProviderVoice]],
) -> ProviderVoice:
    """Adopt the voice ``key`` already made, else create it; after a lost answer, look again first.

    Creates are not idempotent at any provider, so an unknown outcome is resolved by a lookup and a
    second create is sent only when the lookup proves the first one did not happen.
    """
    existing = await find(key)
    if existing is not None:
        return existing
    attempt = 0
    while True:
        attempt += 1
        try:
            return await create()
        except UnknownOutcomeError:
            log.warning("create for key digest %s lost its answer (attempt %d)", key_digest(key), attempt)
            found = await find(key)
            if found is not None:
                return found
            if attempt >= CREATE_ATTEMPTS:
                raise
