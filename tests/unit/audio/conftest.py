"""The generated audio corpora (devkit/audio_corpus.py, devkit/malformed_audio.py), each built once per test session."""

from __future__ import annotations

import pytest

from devkit.audio_corpus import build_corpus
from devkit.malformed_audio import malformed_audio


@pytest.fixture(scope="session")
def corpus() -> dict[str, bytes]:
    """Every corpus file by name (see devkit/audio_corpus.py)."""
    return build_corpus()


@pytest.fixture(scope="session")
def malformed() -> dict[str, bytes]:
    """Every malformed file by name (see devkit/malformed_audio.py)."""
    return malformed_audio()
