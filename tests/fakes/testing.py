"""Shared constants and helpers for adapter tests that run against the fakes."""

from __future__ import annotations

import httpx

from backend.providers.config import ProviderSettings, provider_settings_from_env
from backend.providers.http import RetryPolicy

QWEN_KEY = "sk-test-qwen-0123456789"
ELEVEN_KEY = "sk_test_eleven_0123456789"
CARTESIA_KEY = "sk_car_test_0123456789"

# Short waits keep the suite fast; the read timeout bounds how long a "lost" answer is waited for.
FAST_POLICY = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05, max_retry_after_s=2.0, deadline_s=10.0)
SHORT_TIMEOUT = httpx.Timeout(connect=2.0, read=0.5, write=2.0, pool=2.0)


def settings_for(**env: str) -> ProviderSettings:
    """Provider settings built from the given environment only."""
    return provider_settings_from_env(env)
