"""Which Cartesia model clones and speaks a voice in a given language (docs.cartesia.ai tts-models pages)."""

from __future__ import annotations

import httpx
import pytest

from backend.errors import LanguageNotSupported
from backend.providers import cartesia_models
from backend.providers.cartesia import CartesiaProvider
from backend.providers.errors import UnsupportedLanguageError
from backend.providers.registry import check_enrolment_language
from tests.provider_support import CARTESIA_KEY, settings_for


@pytest.mark.parametrize(
    ("configured", "language", "chosen"),
    [
        ("sonic-3.5", "ka", "sonic-3.5"),
        ("sonic-2", "de", "sonic-2"),
        ("sonic-2-2025-06-11", "ja", "sonic-2-2025-06-11"),
        # Sunset on the sonic-2 snapshots on 2026-06-01 (the API-changes page): the recommended model instead.
        ("sonic-2", "it", "sonic-3.5"),
        ("sonic-2", "hi", "sonic-3.5"),
        ("sonic-turbo", "hi", "sonic-turbo"),
        ("sonic-3-2026-01-12", "pa", "sonic-3-2026-01-12"),
        # The clone endpoint takes Odia and Urdu (the SDK's SupportedLanguage); no model page names them.
        ("sonic-3.5", "or", None),
        ("sonic-3.5", "ur", None),
    ],
)
def test_a_model_per_language(configured: str, language: str, chosen: str | None) -> None:
    assert cartesia_models.model_for(configured, language) == chosen


def test_sunset_and_unknown_models_have_no_family() -> None:
    assert [cartesia_models.family(m) for m in ("sonic-2-2025-03-07", "sonic", "sonic-9", "sonic-3.5-2026-05-04")] == [
        None,
        None,
        None,
        "sonic-3.5",
    ]
    assert len(cartesia_models.LANGUAGES) == 42


async def test_a_language_no_model_speaks_is_a_422_naming_those_that_are() -> None:
    """Refused before anything is stored (the routes' check), and by the adapter itself."""
    with pytest.raises(LanguageNotSupported) as refused:
        check_enrolment_language("cartesia", "or")
    assert refused.value.status == 422
    assert "ka" in refused.value.languages
    async with httpx.AsyncClient() as client:
        provider = CartesiaProvider(settings_for(CARTESIA_API_KEY=CARTESIA_KEY).sections["cartesia"], client)
        with pytest.raises(UnsupportedLanguageError) as unspoken:
            provider.model_for("ur-PK")
    assert unspoken.value.safe_message.startswith("Language 'ur-PK' is not spoken by any Cartesia model.")
    assert unspoken.value.languages == sorted(cartesia_models.LANGUAGES)
