"""What the ``local`` engine takes as a sample: apart from the engine, so that reading the settings (every
command's first step) does not load the engine's signal processing (scipy.signal and hibari take seconds)."""

from __future__ import annotations

from typing import Final

from backend.providers.base import SampleRules
from backend.providers.local.language import LANGUAGES

SAMPLE_RULES: Final = SampleRules(
    formats=frozenset({"audio/wav"}),
    min_duration_s=3.0,
    max_duration_s=60.0,
    recommended_duration_s=(5.0, 20.0),
    min_sample_rate=16000,
    preferred_sample_rate=24000,
    max_bytes=20 * 1024 * 1024,
    max_files=1,
    mono=False,
    languages=LANGUAGES,
)
