"""One development signer for the module's tests, and the audio they sign."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from backend.provenance import ProvenanceSigner, SynthesisClaim
from backend.settings import settings_from_env
from devkit.audio_corpus import encode, noise, tone, wav_bytes

RATE = 24000


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded data directory of the tests' own."""
    return tmp_path_factory.mktemp("provenance-data")


@pytest.fixture(scope="session")
def signer(data_dir: Path) -> Iterator[ProvenanceSigner]:
    """The embedded-mode signer: the development CA under ``data_dir``."""
    signer = ProvenanceSigner.from_settings(settings_from_env({"VOICEGATE_DATA_DIR": str(data_dir)}))
    yield signer
    signer.close()


@pytest.fixture
def claim() -> SynthesisClaim:
    """What a render would state."""
    return SynthesisClaim(
        voice_id=uuid.uuid4(),
        provider="local",
        model="voicegate-local-1",
        consent_id=uuid.uuid4(),
        consent_version="2026-01",
    )


def voice_like(seconds: float) -> np.ndarray:
    """A tone with some noise: audio enough for a codec, cheap to make."""
    return tone(seconds, 220.0, 0.4, RATE) + noise(seconds, 0.02, RATE)


@pytest.fixture(scope="session")
def wav() -> bytes:
    """Five seconds of 24 kHz mono 16-bit WAV, as the providers' renders are stored."""
    return wav_bytes(voice_like(5.0), RATE)


@pytest.fixture(scope="session")
def mp3() -> bytes:
    """The same five seconds as MP3 (LAME in the ffmpeg executable)."""
    return encode(voice_like(5.0), RATE, "mp3", "libmp3lame", bit_rate=64000)
