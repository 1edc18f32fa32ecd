"""The provider voice an attempt enrolled, as its row keeps it: what the preview and the likeness probe speak with."""

from __future__ import annotations

from backend.providers.base import ProviderVoice
from backend.records.attempts import AttemptRow


def enrolled_voice(attempt: AttemptRow) -> ProviderVoice | None:
    """The attempt's provider voice; None before the provider made one."""
    if attempt.provider_voice_id is None:
        return None
    return ProviderVoice(
        provider=attempt.provider,
        voice_id=attempt.provider_voice_id,
        target_model=attempt.provider_target_model,
        metadata=attempt.provider_metadata,
    )
