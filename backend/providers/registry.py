"""Build a provider adapter by name from checked settings."""

from __future__ import annotations

import httpx

from backend.cpu import CpuExecutor, Owner
from backend.errors import LanguageNotSupported
from backend.providers.base import SampleRules, VoiceProvider
from backend.providers.config import AdapterParts, ProviderSettings, entry, key_variable
from backend.providers.env import ProviderConfigError
from backend.providers.errors import UnsupportedLanguageError
from backend.providers.local import language as local_language
from backend.providers.local.provider import LocalProvider, ProfileStore
from backend.providers.selfhosted_store import ReferenceStore
from backend.providers.slots import ProviderSlots


def build_provider(
    name: str,
    settings: ProviderSettings,
    http_client: httpx.AsyncClient,
    *,
    cpu: CpuExecutor,
    profile_store: ProfileStore | None = None,
    reference_store: ReferenceStore | None = None,
    in_flight: int | None = None,
) -> VoiceProvider:
    """The adapter for ``name``; refuses a provider whose API key (or base URL) is not configured.

    ``cpu`` runs the `local` engine's work; ``profile_store`` keeps `local` voices, ``reference_store`` the
    `selfhosted` voices of a server without a voice registry (both in memory when not given); ``in_flight``:
    how many requests the adapter may have in flight with its provider at once (None: any number)."""
    found = entry(name)
    if not found.usable(found.settings(settings)):
        raise ProviderConfigError(f"voice provider '{name}' is not configured: set {key_variable(name)}")
    slots = None if in_flight is None else ProviderSlots(name, in_flight)
    parts = AdapterParts(cpu=cpu, profile_store=profile_store, reference_store=reference_store, slots=slots)
    return found.build(found.settings(settings), http_client, parts)


def sample_rules(name: str) -> SampleRules:
    """What provider ``name`` accepts as a reference sample, checked before any call is spent."""
    return entry(name).sample_rules


def check_enrolment_language(name: str, language: str | None) -> None:
    """LanguageNotSupported (422, naming the languages it speaks) when provider ``name`` cannot make a voice in
    ``language``: the rule its adapter applies to the sample (``SampleRules.languages``), checked before
    anything is stored."""
    if (refused := sample_rules(name).language_refusal(name, language)) is not None:
        raise language_not_supported(refused)


def check_speakable(name: str, language: str | None, text: str | None = None) -> None:
    """LanguageNotSupported (422, naming the languages it speaks) when provider ``name`` cannot speak in a voice
    whose language is ``language``, or read ``text``: the voice's language decides, the text's is never
    guessed. Only the `local` engine has such limits (``backend.providers.local.language``); a cloud
    provider's model answers for itself."""
    if name == LocalProvider.name and (refused := local_language.refusal(language, text)) is not None:
        raise language_not_supported(refused)


def language_not_supported(refused: UnsupportedLanguageError) -> LanguageNotSupported:
    """A provider's refusal of a language or a text, as the client's 422 naming what the provider speaks."""
    return LanguageNotSupported(refused.safe_message, provider=refused.provider, languages=refused.languages)


class ProviderSet:
    """The adapters one process uses, built on first use and sharing one HTTP client and one CPU executor; each
    holds the process's requests to its provider to `in_flight` at once (None: any number)."""

    def __init__(
        self,
        settings: ProviderSettings,
        http_client: httpx.AsyncClient,
        *,
        cpu: CpuExecutor,
        profile_store: ProfileStore | None = None,
        reference_store: ReferenceStore | None = None,
        in_flight: int | None = None,
    ) -> None:
        self._settings = settings
        self._http = http_client
        self._cpu = cpu
        self._profile_store = profile_store
        self._reference_store = reference_store
        self._in_flight = in_flight
        self._built: dict[str, VoiceProvider] = {}

    def get(self, name: str, *, owner: Owner = None) -> VoiceProvider:
        """The adapter for `name` (ProviderConfigError when it is unknown or has no key), working for `owner`:
        the `local` engine, which computes in this process, queues its work in that user's lane of the CPU
        executor (None: system work). The other adapters wait on the network, and ignore it."""
        if name not in self._built:
            self._built[name] = build_provider(
                name,
                self._settings,
                self._http,
                cpu=self._cpu,
                profile_store=self._profile_store,
                reference_store=self._reference_store,
                in_flight=self._in_flight,
            )
        adapter = self._built[name]
        return adapter.working_for(owner) if isinstance(adapter, LocalProvider) else adapter
