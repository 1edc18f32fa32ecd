"""Provider configuration read from the environment, checked at start-up, secrets redacted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, get_args
from urllib.parse import urlsplit

import msgspec

from backend.errors import ProviderNotConfigured
from backend.secret import Secret, is_loopback_host

ProviderName = Literal["local", "qwen", "elevenlabs", "cartesia"]
"""The providers a request may name."""
PROVIDER_NAMES: Final[tuple[str, ...]] = get_args(ProviderName)

QWEN_HOSTS: Final = {"intl": "dashscope-intl.aliyuncs.com", "cn": "dashscope.aliyuncs.com"}
# Workspace domains: {WorkspaceId}.<region>.maas.aliyuncs.com.
QWEN_WORKSPACE_SUFFIXES: Final = {
    "intl": ".ap-southeast-1.maas.aliyuncs.com",
    "cn": ".cn-beijing.maas.aliyuncs.com",
}
ELEVENLABS_DEFAULT_URL: Final = "https://api.elevenlabs.io"
CARTESIA_DEFAULT_URL: Final = "https://api.cartesia.ai"
# Versions whose clone/list/TTS field sets the Cartesia adapter speaks (older ones need `mode`,
# return plain arrays from GET /voices and use X-API-Key).
CARTESIA_VERSIONS: Final = ("2025-04-16", "2026-03-01")
CARTESIA_DEFAULT_VERSION: Final = "2025-04-16"


class ProviderConfigError(ValueError):
    """A provider setting is missing or does not fit; the message names the variable, never its value."""


class QwenSettings(msgspec.Struct, frozen=True, kw_only=True):
    """DashScope access for Qwen voice enrolment and synthesis."""

    api_key: Secret | None
    region: str
    base_url: str


class ElevenLabsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """ElevenLabs access."""

    api_key: Secret | None
    base_url: str


class CartesiaSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Cartesia access, pinned to one API version."""

    api_key: Secret | None
    base_url: str
    version: str


class ProviderSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Every provider's settings plus the default provider name."""

    default_provider: str
    qwen: QwenSettings
    elevenlabs: ElevenLabsSettings
    cartesia: CartesiaSettings

    def has_key(self, provider: str) -> bool:
        """Whether ``provider`` can be used (``local`` needs no key)."""
        if provider == "local":
            return True
        section: QwenSettings | ElevenLabsSettings | CartesiaSettings = getattr(self, provider)
        return section.api_key is not None

    def usable(self, provider: str | None) -> str:
        """`provider`, or the default when None; ProviderNotConfigured (422) when it has no key."""
        name = provider or self.default_provider
        if not self.has_key(name):
            raise ProviderNotConfigured(f"Voice provider {name!r} is not configured ({key_variable(name)}).")
        return name


def _base_url(variable: str, value: str) -> tuple[str, str]:
    """Validate a base URL; returns (normalised URL without trailing slash, lower-case host)."""
    parts = urlsplit(value.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in {"http", "https"} or not host:
        raise ProviderConfigError(f"{variable} must be an http(s) URL such as https://host")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ProviderConfigError(f"{variable} must use https (plain http is allowed only for loopback)")
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in {"", "/"}:
        raise ProviderConfigError(f"{variable} must be a bare origin (no path, query or credentials)")
    return f"{parts.scheme}://{parts.netloc}", host


def _key(variable: str, value: str | None, *, prefix: str | None = None) -> Secret | None:
    if value is None or value == "":
        return None
    if value != value.strip() or any(ch.isspace() for ch in value) or not value.isascii():
        raise ProviderConfigError(f"{variable} contains whitespace or non-ASCII characters")
    if prefix is not None and not value.startswith(prefix):
        raise ProviderConfigError(f"{variable} does not look like a key for this provider (expected {prefix}...)")
    return Secret(value)


def _qwen(env: Mapping[str, str]) -> QwenSettings:
    region = env.get("QWEN_REGION", "intl").strip().lower() or "intl"
    if region not in QWEN_HOSTS:
        raise ProviderConfigError("QWEN_REGION must be 'intl' or 'cn'")
    api_key = _key("DASHSCOPE_API_KEY", env.get("DASHSCOPE_API_KEY"), prefix="sk-")
    raw_url = env.get("DASHSCOPE_BASE_URL", "")
    if not raw_url:
        return QwenSettings(api_key=api_key, region=region, base_url=f"https://{QWEN_HOSTS[region]}")
    base_url, host = _base_url("DASHSCOPE_BASE_URL", raw_url)
    for other, other_host in QWEN_HOSTS.items():
        fits_other = host == other_host or host.endswith(QWEN_WORKSPACE_SUFFIXES[other])
        if other != region and fits_other:
            # DashScope keys are per region: a key sent to the other region's host gets 401 InvalidApiKey.
            raise ProviderConfigError(
                f"DASHSCOPE_BASE_URL points at the {other!r} region but QWEN_REGION is {region!r}; "
                "DashScope keys only work in their own region"
            )
    if host.endswith(".aliyuncs.com") and not (
        host == QWEN_HOSTS[region] or host.endswith(QWEN_WORKSPACE_SUFFIXES[region])
    ):
        raise ProviderConfigError(f"DASHSCOPE_BASE_URL host is not a DashScope endpoint of region {region!r}")
    return QwenSettings(api_key=api_key, region=region, base_url=base_url)


def _elevenlabs(env: Mapping[str, str]) -> ElevenLabsSettings:
    api_key = _key("ELEVENLABS_API_KEY", env.get("ELEVENLABS_API_KEY"))
    base_url, _ = _base_url("ELEVENLABS_BASE_URL", env.get("ELEVENLABS_BASE_URL") or ELEVENLABS_DEFAULT_URL)
    return ElevenLabsSettings(api_key=api_key, base_url=base_url)


def _cartesia(env: Mapping[str, str]) -> CartesiaSettings:
    api_key = _key("CARTESIA_API_KEY", env.get("CARTESIA_API_KEY"), prefix="sk_car_")
    if api_key is not None and api_key.reveal().startswith("sk_car_admin_"):
        raise ProviderConfigError("CARTESIA_API_KEY is an admin key; voice and TTS routes need a standard key")
    base_url, _ = _base_url("CARTESIA_BASE_URL", env.get("CARTESIA_BASE_URL") or CARTESIA_DEFAULT_URL)
    version = env.get("CARTESIA_VERSION", "").strip() or CARTESIA_DEFAULT_VERSION
    if version not in CARTESIA_VERSIONS:
        raise ProviderConfigError(f"CARTESIA_VERSION must be one of {', '.join(CARTESIA_VERSIONS)}")
    return CartesiaSettings(api_key=api_key, base_url=base_url, version=version)


_KEY_VARIABLES: Final = {
    "qwen": "DASHSCOPE_API_KEY",
    "elevenlabs": "ELEVENLABS_API_KEY",
    "cartesia": "CARTESIA_API_KEY",
}


def key_variable(provider: str) -> str:
    """The environment variable that holds ``provider``'s API key."""
    return _KEY_VARIABLES[provider]


def provider_settings_from_env(env: Mapping[str, str]) -> ProviderSettings:
    """Read and check every provider setting; raises ``ProviderConfigError`` with a clear message."""
    default = env.get("VOICE_PROVIDER", "").strip().lower() or "local"
    if default not in PROVIDER_NAMES:
        raise ProviderConfigError(f"VOICE_PROVIDER must be one of {', '.join(PROVIDER_NAMES)}")
    settings = ProviderSettings(
        default_provider=default, qwen=_qwen(env), elevenlabs=_elevenlabs(env), cartesia=_cartesia(env)
    )
    if not settings.has_key(default):
        raise ProviderConfigError(f"VOICE_PROVIDER is {default!r} but {key_variable(default)} is not set")
    return settings
