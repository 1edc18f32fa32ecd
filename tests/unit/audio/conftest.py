"""The generated audio corpus, built once per test session."""

from __future__ import annotations

import pytest

from devkit.audio_corpus import build_corpus


@pytest.fixture(scope="session")
def corpus() -> dict[str, bytes]:
    """Every corpus file by name (see devkit/audio_corpus.py)."""
    return build_corpus()
