"""What the adapter tests that run against the provider fakes (`fakes/`) share: the keys the fakes are given,
short retry policies and timeouts, provider settings from an environment, and a reference sample."""

from __future__ import annotations

import httpx

from backend.providers.base import SampleRef
from backend.providers.config import ProviderSettings, provider_settings_from_env
from backend.providers.http import RetryPolicy
from fakes.audio import tone_wav

QWEN_KEY = "sk-test-qwen-0123456789"
ELEVEN_KEY = "sk_test_eleven_0123456789"
CARTESIA_KEY = "sk_car_test_0123456789"

# Short waits keep the suite fast; the read timeout bounds how long a "lost" answer is waited for.
FAST_POLICY = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05, max_retry_after_s=2.0, deadline_s=10.0)
SHORT_TIMEOUT = httpx.Timeout(connect=2.0, read=0.5, write=2.0, pool=2.0)


def settings_for(**env: str) -> ProviderSettings:
    """Provider settings built from the given environment only."""
    return provider_settings_from_env(env)


def wav_sample(seconds: float = 5.0, rate: int = 24000, freq: float = 180.0) -> SampleRef:
    """A mono 16-bit WAV sample (generated, never committed) with its measured properties filled in."""
    return SampleRef(
        data=tone_wav(seconds, rate, freq),
        mime_type="audio/wav",
        filename="sample.wav",
        duration_s=seconds,
        sample_rate=rate,
        channels=1,
    )
