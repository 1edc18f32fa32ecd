"""Voice providers behind one adapter interface: Qwen, ElevenLabs, Cartesia and the offline ``local``."""

from backend.providers.base import ProviderVoice, SampleRef, SampleRules, SynthesisResult, VoiceProvider
from backend.providers.config import ProviderConfigError, ProviderSettings, provider_settings_from_env
from backend.providers.errors import (
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UnknownOutcomeError,
    VoiceNotFoundError,
)
from backend.providers.http import create_http_client
from backend.providers.registry import build_provider

__all__ = [
    "PermanentProviderError",
    "ProviderConfigError",
    "ProviderError",
    "ProviderSettings",
    "ProviderVoice",
    "SampleRef",
    "SampleRules",
    "SynthesisResult",
    "TransientProviderError",
    "UnknownOutcomeError",
    "VoiceNotFoundError",
    "VoiceProvider",
    "build_provider",
    "create_http_client",
    "provider_settings_from_env",
]
