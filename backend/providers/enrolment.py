"""Enrolment keys: how a voice is tagged at the provider so a lost create is never repeated."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable

from backend.providers.base import ProviderVoice
from backend.providers.errors import UnknownOutcomeError

log = logging.getLogger(__name__)

# Creates retried after an unknown outcome (each one preceded by a lookup that found nothing).
CREATE_ATTEMPTS = 3


def key_digest(key: str, length: int = 24) -> str:
    """A stable lower-case hex digest of an enrolment key (safe in names, labels and descriptions)."""
    if not key:
        raise ValueError("enrolment key must not be empty")
    return hashlib.sha256(key.encode()).hexdigest()[:length]


def key_marker(key: str) -> str:
    """The marker written into a voice's description, e.g. ``[voicegate:3f2a...]``."""
    return f"[voicegate:{key_digest(key)}]"


async def enroll_once(
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
