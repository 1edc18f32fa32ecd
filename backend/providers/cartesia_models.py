"""Cartesia's TTS models and the languages each serves, for choosing a model per voice language.

Sources (read 2026-11-25): docs.cartesia.ai ``build-with-cartesia/tts-models/api-changes`` (the models
sunset on 2026-06-01, and the languages the remaining ``sonic-2`` and ``sonic-turbo`` snapshots still
serve), ``tts-models/latest`` and ``tts-models/older-models`` (``sonic-3.5`` and ``sonic-3``: 42
languages), and the cartesia 4.2.0 SDK's ``types/tts_model.py`` (the model ids it names: ``sonic-3.5``,
``sonic-3``, ``sonic-3.5-2026-05-04``, ``sonic-3-2026-01-12``, ``sonic-3-2025-10-27``, ``sonic-latest``).
Its ``types/supported_language.py`` also lists ``or`` and ``ur``, which the clone endpoint takes but no
model's page says it speaks: a voice in them could be made and never spoken, so they are left out.
"""

from __future__ import annotations

import re
from typing import Final

#: What Cartesia recommends (the API-changes page: "Migrate to sonic-3.5"); ``CARTESIA_MODEL``'s default.
RECOMMENDED: Final = "sonic-3.5"

_SONIC_3: Final = frozenset(
    "en fr de es pt zh ja hi it ko nl pl ru sv tr tl bg ro ar cs el "  # noqa: SIM905 - a list: a line a code
    "fi hr ms sk da ta uk hu no vi bn th he ka id te gu kn ml mr pa".split()
)
#: Since 2026-06-01 the ``sonic-2`` snapshots left serve these only (it, nl, pl, ru, sv, tr, hi were sunset).
_SONIC_2: Final = frozenset("en de es fr ja ko pt zh".split())  # noqa: SIM905 - a list of codes

#: Model families (a base name, or the base name and a ``-YYYY-MM-DD`` snapshot) and their languages.
FAMILIES: Final[dict[str, frozenset[str]]] = {
    "sonic-3.5": _SONIC_3,
    "sonic-3": _SONIC_3,
    "sonic-latest": _SONIC_3,
    "sonic-2": _SONIC_2,
    "sonic-turbo": _SONIC_2 | {"hi"},
}
#: Models Cartesia answers with ``model_sunsetted`` since 2026-06-01.
SUNSET: Final = frozenset(
    {"sonic", "sonic-english", "sonic-multilingual", "sonic-2-2025-03-07", "sonic-turbo-2025-03-07"}
)
#: Every language some current model speaks: what a Cartesia voice may be cloned in.
LANGUAGES: Final = frozenset().union(*FAMILIES.values())

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def family(model: str) -> str | None:
    """The family of a model id (``sonic-3-2026-01-12`` is ``sonic-3``); None for a sunset or unknown one."""
    if model in SUNSET:
        return None
    base = _SNAPSHOT.sub("", model)
    return base if base in FAMILIES else None


def serves(model: str, language: str) -> bool:
    """Whether ``model`` speaks ``language`` (a primary subtag such as ``fr``)."""
    name = family(model)
    return name is not None and language in FAMILIES[name]


def model_for(configured: str, language: str) -> str | None:
    """The model to clone and speak a voice in ``language`` with: the configured one when it serves the
    language, else the recommended one, else any current one that does; None when no model speaks it."""
    for model in (configured, RECOMMENDED, *FAMILIES):
        if serves(model, language):
            return model
    return None
