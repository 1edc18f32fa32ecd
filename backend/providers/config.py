"""The providers voicegate speaks: one entry each, the one list everything else reads (the `Provider` enum of the
OpenAPI document, the settings read at start-up, the adapters the registry builds, the Providers table of
docs/settings.md; the database's lists of providers are tested against it, and the deploy files and the README
name no provider, so a new one needs no edit there). docs/providers.md says how to add one."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, NamedTuple, TypeVar, cast

import httpx
import msgspec

from backend.cpu import CpuExecutor
from backend.errors import ProviderNotConfigured
from backend.providers import cartesia, elevenlabs, qwen, selfhosted
from backend.providers.base import SampleRules, VoiceProvider
from backend.providers.env import ProviderConfigError, choice_setting
from backend.providers.local.rules import SAMPLE_RULES as LOCAL_SAMPLE_RULES
from backend.providers.selfhosted_store import ReferenceStore
from backend.providers.slots import ProviderSlots

if TYPE_CHECKING:
    from backend.providers.local.provider import ProfileStore

S = TypeVar("S")


@dataclass(frozen=True, kw_only=True)
class AdapterParts:
    """What an adapter may need besides its settings and the HTTP client: the CPU executor the `local` engine
    computes on, where `local` keeps its voices, where `selfhosted` keeps the references of a server without a
    voice registry (both in memory when None), and the slots the process's requests to the provider share
    (`backend.providers.slots`; None: not held to any number)."""

    cpu: CpuExecutor
    profile_store: ProfileStore | None = None
    reference_store: ReferenceStore | None = None
    slots: ProviderSlots | None = None


class SettingDoc(NamedTuple):
    """A row of the Providers table of docs/settings.md (made by docs_hooks.py): variables, defaults, meaning."""

    variables: tuple[str, ...]
    default: str
    meaning: str


@dataclass(frozen=True, kw_only=True)
class ProviderEntry(Generic[S]):
    """One provider: its name (the API's and the database's), how its settings are read and when they make it
    usable, which of its variables are secrets, and how its adapter is built."""

    name: str
    #: What the docs call it (beside its name in docs/settings.md's Providers table).
    title: str
    read_settings: Callable[[Mapping[str, str]], S]
    usable: Callable[[S], bool]
    #: The variable that makes it usable (its API key, or base URL); None: always usable.
    key_variable: str | None
    #: Its other variables that hold secrets (optional keys): a deployment's Secret, never its ConfigMap.
    secrets: tuple[str, ...] = ()
    build: Callable[[S, httpx.AsyncClient, AdapterParts], VoiceProvider]
    sample_rules: SampleRules
    #: Every variable it reads, documented (tests/unit/test_provider_list.py checks none is left out).
    documented: tuple[SettingDoc, ...] = ()

    def settings(self, settings: ProviderSettings) -> S:
        """This provider's section of `settings`."""
        return cast(S, settings.sections[self.name])


def _no_settings(env: Mapping[str, str]) -> None:
    """`local` reads nothing."""
    return


def _local_provider(parts: AdapterParts) -> VoiceProvider:
    """The `local` engine, imported only when an adapter is built: every command reads these settings, and the
    engine's signal processing takes seconds to import where only `up` and the worker speak."""
    from backend.providers.local.provider import LocalProvider  # noqa: PLC0415 - see the docstring

    return LocalProvider(parts.profile_store, cpu=parts.cpu)


PROVIDERS: Final[tuple[ProviderEntry[Any], ...]] = (
    ProviderEntry[None](
        name="local",
        title="local",
        read_settings=_no_settings,
        usable=lambda _: True,
        key_variable=None,
        build=lambda _, _client, parts: _local_provider(parts),
        sample_rules=LOCAL_SAMPLE_RULES,
    ),
    ProviderEntry[qwen.QwenSettings](
        name="qwen",
        title="Qwen / DashScope",
        read_settings=qwen.settings_from_env,
        usable=lambda s: s.api_key is not None,
        key_variable="DASHSCOPE_API_KEY",
        build=lambda s, client, parts: qwen.QwenProvider(s, client, slots=parts.slots),
        sample_rules=qwen.QwenProvider.sample_rules,
        documented=(
            SettingDoc(
                ("DASHSCOPE_API_KEY", "QWEN_REGION", "DASHSCOPE_BASE_URL"),
                "unset, `intl`, the region's host",
                "Qwen; a base URL of the other region fails at start-up",
            ),
        ),
    ),
    ProviderEntry[elevenlabs.ElevenLabsSettings](
        name="elevenlabs",
        title="ElevenLabs",
        read_settings=elevenlabs.settings_from_env,
        usable=lambda s: s.api_key is not None,
        key_variable="ELEVENLABS_API_KEY",
        build=lambda s, client, parts: elevenlabs.ElevenLabsProvider(s, client, slots=parts.slots),
        sample_rules=elevenlabs.ElevenLabsProvider.sample_rules,
        documented=(
            SettingDoc(
                ("ELEVENLABS_API_KEY", "ELEVENLABS_BASE_URL"), "unset, `https://api.elevenlabs.io`", "ElevenLabs"
            ),
        ),
    ),
    ProviderEntry[cartesia.CartesiaSettings](
        name="cartesia",
        title="Cartesia",
        read_settings=cartesia.settings_from_env,
        usable=lambda s: s.api_key is not None,
        key_variable="CARTESIA_API_KEY",
        build=lambda s, client, parts: cartesia.CartesiaProvider(s, client, slots=parts.slots),
        sample_rules=cartesia.CartesiaProvider.sample_rules,
        documented=(
            SettingDoc(
                ("CARTESIA_API_KEY", "CARTESIA_BASE_URL", "CARTESIA_VERSION"),
                "unset, `https://api.cartesia.ai`, `2026-03-01`",
                "Cartesia (`2025-04-16` also spoken)",
            ),
            SettingDoc(
                ("CARTESIA_MODEL",),
                "`sonic-3.5`",
                "the Cartesia model new voices are cloned for: `sonic-3.5`, `sonic-3`, `sonic-latest`, `sonic-2`, "
                "`sonic-turbo` or a dated snapshot of one (`sonic-3-2026-01-12`); a sunset model is refused at "
                "start-up. A voice whose language the model lacks is cloned for `sonic-3.5`; one no model speaks is "
                "refused with a 422 `language_not_supported`",
            ),
        ),
    ),
    ProviderEntry[selfhosted.SelfhostedSettings](
        name="selfhosted",
        title="your own server",
        read_settings=selfhosted.settings_from_env,
        usable=lambda s: s.base_url is not None,
        key_variable="SELFHOSTED_BASE_URL",
        secrets=("SELFHOSTED_API_KEY", "MODAL_KEY", "MODAL_SECRET"),
        build=lambda s, client, parts: selfhosted.SelfhostedProvider(
            s, client, store=parts.reference_store, slots=parts.slots
        ),
        sample_rules=selfhosted.SelfhostedProvider.sample_rules,
        documented=(
            SettingDoc(
                ("SELFHOSTED_BASE_URL",),
                "unset",
                "a self-hosted OpenAI-shaped speech server (https, or http on loopback; a path prefix is kept); "
                "required to use `selfhosted`",
            ),
            SettingDoc(
                ("SELFHOSTED_API_KEY", "SELFHOSTED_MODEL"),
                "unset",
                "optional bearer key; the `model` sent (omitted when unset: the server's own)",
            ),
            SettingDoc(
                ("SELFHOSTED_VOICE_REGISTRY",),
                "`auto`",
                "`registry` (OpenAI's `/v1/audio/voices`: vLLM-Omni), `chatterbox` (chatterbox-tts-api's "
                "`/v1/voices`), `inline` (reference sent with every synthesis, once the server has shown it reads "
                "`ref_audio`), or `auto` (asks the server once: `/v1/audio/voices`, then `/v1/voices`, else inline)",
            ),
            SettingDoc(
                ("SELFHOSTED_PROFILE", "MODAL_KEY", "MODAL_SECRET"),
                "`openai`, unset, unset",
                "`modal`: proxy-auth headers (both or neither), 303 polling, cold-start timeouts, warm-up",
            ),
            SettingDoc(
                ("SELFHOSTED_TIMEOUT_SECONDS",),
                "`120` (`600` with `modal`)",
                "longest wait for one self-hosted call, polling included",
            ),
        ),
    ),
)

PROVIDER_NAMES: Final[tuple[str, ...]] = tuple(entry.name for entry in PROVIDERS)
_BY_NAME: Final = {entry.name: entry for entry in PROVIDERS}

# Made from the list, so the OpenAPI document's `Provider` names what the list names; mypy sees no members (it
# reads only literal ones), and none are used by name.
Provider = enum.StrEnum("Provider", [(name.upper(), name) for name in PROVIDER_NAMES])  # type: ignore[misc]
Provider.__doc__ = "A voice provider a request may name."
Provider.__module__ = __name__


def entry(name: str) -> ProviderEntry[Any]:
    """The entry of provider `name`; ProviderConfigError when there is none."""
    if name not in _BY_NAME:
        raise ProviderConfigError(f"unknown voice provider {name!r}; choose one of {', '.join(PROVIDER_NAMES)}")
    return _BY_NAME[name]


class ProviderSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Every provider's settings (by name, as its entry reads them) plus the default provider name."""

    default_provider: str
    sections: dict[str, object]

    def has_key(self, provider: str) -> bool:
        """Whether ``provider`` can be used (``local`` needs no key, ``selfhosted`` its base URL)."""
        found = entry(provider)
        return found.usable(found.settings(self))

    def usable(self, provider: str | None) -> str:
        """`provider`, or the default when None; ProviderNotConfigured (422) when it has no key."""
        # A route's Provider member is a StrEnum: its str() is the name a user sent, where repr() is Python's.
        name = str(provider or self.default_provider)
        if not self.has_key(name):
            raise ProviderNotConfigured(
                f"Voice provider '{name}' is not configured on this server (its operator sets {key_variable(name)})."
            )
        return name


def key_variable(provider: str) -> str:
    """The environment variable that makes ``provider`` usable: its API key (its base URL for ``selfhosted``)."""
    return entry(provider).key_variable or "nothing"


def provider_settings_from_env(env: Mapping[str, str]) -> ProviderSettings:
    """Read and check every provider setting; raises ``ProviderConfigError`` with a clear message."""
    default = choice_setting(env, "VOICE_PROVIDER", PROVIDER_NAMES, "local")
    settings = ProviderSettings(
        default_provider=default, sections={item.name: item.read_settings(env) for item in PROVIDERS}
    )
    if not settings.has_key(default):
        raise ProviderConfigError(f"VOICE_PROVIDER is {default!r} but {key_variable(default)} is not set")
    return settings
