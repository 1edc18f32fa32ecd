"""Reference samples for adapter tests (generated, never committed)."""

from __future__ import annotations

from backend.providers.base import SampleRef
from tests.fakes.audio import tone_wav


def wav_sample(seconds: float = 5.0, rate: int = 24000, freq: float = 180.0) -> SampleRef:
    """A mono 16-bit WAV sample with its measured properties filled in."""
    return SampleRef(
        data=tone_wav(seconds, rate, freq),
        mime_type="audio/wav",
        filename="sample.wav",
        duration_s=seconds,
        sample_rate=rate,
        channels=1,
    )
