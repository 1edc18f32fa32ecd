"""Provider error classes: transient, permanent and unknown-outcome.

These are standalone on purpose (no imports from the rest of the backend) so the application can map
them into its own exception hierarchy. Every error carries a ``safe_message`` that may be shown to an
end user; the provider's own code and text are kept in separate fields for operators only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

E = TypeVar("E", bound="ProviderError")


class ProviderError(Exception):
    """Base class of every error raised by a provider adapter."""

    def __init__(
        self,
        provider: str,
        safe_message: str,
        *,
        provider_code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
        operator_detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(safe_message)
        self.provider = provider
        self.safe_message = safe_message
        self.provider_code = provider_code
        self.http_status = http_status
        self.request_id = request_id
        # The provider's own message, trimmed: useful in logs, never shown to users.
        self.operator_detail = operator_detail[:500] if operator_detail else None
        #: Seconds the provider asked us to wait (``Retry-After``); only a transient failure carries one.
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, provider_code={self.provider_code!r}, "
            f"http_status={self.http_status!r}, safe_message={self.safe_message!r})"
        )

    def recast(self, cls: type[E], safe_message: str) -> E:
        """The same failure (code, status, request id, detail) as an error of class ``cls``."""
        return cls(
            self.provider,
            safe_message,
            provider_code=self.provider_code,
            http_status=self.http_status,
            request_id=self.request_id,
            operator_detail=self.operator_detail,
        )


def answer_fields(status: int, code: str | None, detail: str | None, request_id: str | None = None) -> dict[str, Any]:
    """What every error classified from a provider's error answer carries besides its safe message: the
    provider's code and request id, the HTTP status, and the provider's own text for operators."""
    return {"provider_code": code, "http_status": status, "request_id": request_id, "operator_detail": detail}


class TransientProviderError(ProviderError):
    """A failure worth retrying later: timeouts, connection errors, 429 and 5xx answers."""


class PermanentProviderError(ProviderError):
    """A failure that repeating the same request will not fix: bad audio, quota, credentials."""


class VoiceNotFoundError(PermanentProviderError):
    """The provider does not know the voice (never created, or deleted)."""


class UnsupportedLanguageError(PermanentProviderError):
    """The provider cannot speak the voice's language, or read the letters of the text.

    ``languages`` are the language tags (primary subtags such as ``en``) it speaks, sorted, for the user to
    be told. Repeating the request cannot help; another voice, text or provider can.
    """

    def __init__(self, provider: str, safe_message: str, *, languages: Iterable[str]) -> None:
        super().__init__(provider, safe_message, provider_code="language_not_supported")
        self.languages = sorted(languages)

    @classmethod
    def naming(cls, provider: str, problem: str, languages: Iterable[str]) -> UnsupportedLanguageError:
        """The error for ``problem`` (a sentence without its full stop) with a sentence naming the languages
        ``provider`` speaks after it: "Language 'zh' is not supported. The local provider speaks: en."
        """
        spoken = sorted(languages)
        return cls(provider, f"{problem}. The {provider} provider speaks: {', '.join(spoken)}.", languages=spoken)


class UnknownOutcomeError(ProviderError):
    """A create whose answer was lost: the voice may or may not exist at the provider.

    The caller must look the enrolment key up at the provider before creating again.
    """


class ModelRetiredError(PermanentProviderError):
    """The model the voice was made for (its ``target_model``) is retired at the provider.

    Cartesia answers ``model_sunsetted``; a DashScope voice is bound to its model for life. Repeating
    the request cannot help, but enrolling the voice again (for a current model) can.
    """
