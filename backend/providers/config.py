"""Provider configuration read from the environment, checked at start-up, secrets redacted."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

import msgspec

from backend.errors import ProviderNotConfigured
from backend.providers import cartesia_models
from backend.secret import Secret, is_loopback_host


class Provider(enum.StrEnum):
    """A voice provider a request may name."""

    LOCAL = "local"
    QWEN = "qwen"
    ELEVENLABS = "elevenlabs"
    CARTESIA = "cartesia"
    SELFHOSTED = "selfhosted"


PROVIDER_NAMES: Final[tuple[str, ...]] = tuple(provider.value for provider in Provider)

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
# 2026-03-01: JSON errors and 404 for an unknown voice, which lets a lost voice be told from a bad request.
CARTESIA_DEFAULT_VERSION: Final = "2026-03-01"
SELFHOSTED_REGISTRY_MODES: Final = ("auto", "registry", "chatterbox", "inline")
SELFHOSTED_PROFILES: Final = ("openai", "modal")
#: Seconds a self-hosted call may take in all (polling included): a Modal cold start loads a model first.
SELFHOSTED_DEFAULT_TIMEOUT: Final = {"openai": 120.0, "modal": 600.0}
SELFHOSTED_MAX_TIMEOUT: Final = 3600.0


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
    """Cartesia access, pinned to one API version; ``model`` clones and speaks new voices, unless it lacks a
    voice's language (``backend.providers.cartesia_models`` then picks one that has it)."""

    api_key: Secret | None
    base_url: str
    version: str
    model: str


class SelfhostedSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A server speaking the OpenAI-shaped speech API; usable once ``base_url`` is set.

    ``voice_registry``: ``registry`` enrols through ``/v1/audio/voices`` (OpenAI's, vLLM-Omni's),
    ``chatterbox`` through chatterbox-tts-api's ``/v1/voices``, ``inline`` keeps the reference and sends it
    with every synthesis (once the server has shown it reads it), ``auto`` asks the server which it is.
    ``profile``: ``modal`` adds Modal's proxy-auth headers, 303 polling and cold-start timeouts.
    """

    base_url: str | None
    api_key: Secret | None
    model: str | None
    voice_registry: str
    profile: str
    modal_key: Secret | None
    modal_secret: Secret | None
    timeout_s: float


class ProviderSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Every provider's settings plus the default provider name."""

    default_provider: str
    qwen: QwenSettings
    elevenlabs: ElevenLabsSettings
    cartesia: CartesiaSettings
    selfhosted: SelfhostedSettings

    def has_key(self, provider: str) -> bool:
        """Whether ``provider`` can be used (``local`` needs no key, ``selfhosted`` its base URL)."""
        if provider == "local":
            return True
        if provider == "selfhosted":
            return self.selfhosted.base_url is not None
        section: QwenSettings | ElevenLabsSettings | CartesiaSettings = getattr(self, provider)
        return section.api_key is not None

    def usable(self, provider: str | None) -> str:
        """`provider`, or the default when None; ProviderNotConfigured (422) when it has no key."""
        name = provider or self.default_provider
        if not self.has_key(name):
            raise ProviderNotConfigured(f"Voice provider {name!r} is not configured ({key_variable(name)}).")
        return name


def _base_url(variable: str, value: str, *, path: bool = False) -> tuple[str, str]:
    """Validate a base URL; returns (normalised URL without trailing slash, lower-case host). With
    `path`, a path prefix is kept (a server behind a reverse proxy at `https://host/tts`)."""
    parts = urlsplit(value.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in {"http", "https"} or not host:
        raise ProviderConfigError(f"{variable} must be an http(s) URL such as https://host")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ProviderConfigError(f"{variable} must use https (plain http is allowed only for loopback)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ProviderConfigError(f"{variable} must not carry a query, fragment or credentials")
    if not path and parts.path not in {"", "/"}:
        raise ProviderConfigError(f"{variable} must be a bare origin (no path, query or credentials)")
    prefix = parts.path.rstrip("/") if path else ""
    return f"{parts.scheme}://{parts.netloc}{prefix}", host


def _key(variable: str, value: str | None, *, prefix: str | None = None) -> Secret | None:
    if value is None or value == "":
        return None
    if value != value.strip() or any(ch.isspace() for ch in value) or not value.isascii():
        raise ProviderConfigError(f"{variable} contains whitespace or non-ASCII characters")
    if prefix is not None and not value.startswith(prefix):
        raise ProviderConfigError(f"{variable} does not look like a key for this provider (expected {prefix}...)")
    return Secret(value)


def _choice(env: Mapping[str, str], variable: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(variable, "").strip().lower() or default
    if value not in choices:
        raise ProviderConfigError(f"{variable} must be one of {', '.join(choices)}")
    return value


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
    version = _choice(env, "CARTESIA_VERSION", CARTESIA_VERSIONS, CARTESIA_DEFAULT_VERSION)
    model = env.get("CARTESIA_MODEL", "").strip() or cartesia_models.RECOMMENDED
    if model in cartesia_models.SUNSET:
        raise ProviderConfigError(
            f"CARTESIA_MODEL {model!r} was sunset by Cartesia; use {cartesia_models.RECOMMENDED!r}"
        )
    if cartesia_models.family(model) is None:
        # Its languages are unknown, so no voice could be told which model speaks it.
        raise ProviderConfigError(
            f"CARTESIA_MODEL must be one of {', '.join(cartesia_models.FAMILIES)} or one of their dated snapshots"
        )
    return CartesiaSettings(api_key=api_key, base_url=base_url, version=version, model=model)


def _selfhosted(env: Mapping[str, str]) -> SelfhostedSettings:
    raw_url = env.get("SELFHOSTED_BASE_URL", "").strip()
    base_url = _base_url("SELFHOSTED_BASE_URL", raw_url, path=True)[0] if raw_url else None
    profile = _choice(env, "SELFHOSTED_PROFILE", SELFHOSTED_PROFILES, "openai")
    modal_key = _key("MODAL_KEY", env.get("MODAL_KEY"))
    modal_secret = _key("MODAL_SECRET", env.get("MODAL_SECRET"))
    if (modal_key is None) != (modal_secret is None):
        raise ProviderConfigError("set both MODAL_KEY and MODAL_SECRET (Modal's proxy auth), or neither")
    if modal_key is not None and profile != "modal":
        raise ProviderConfigError("MODAL_KEY and MODAL_SECRET are used only with SELFHOSTED_PROFILE=modal")
    model = env.get("SELFHOSTED_MODEL", "").strip() or None
    if model is not None and (len(model) > 200 or not model.isprintable()):
        raise ProviderConfigError("SELFHOSTED_MODEL must be a model name of at most 200 printable characters")
    raw_timeout = env.get("SELFHOSTED_TIMEOUT_SECONDS", "").strip()
    try:
        timeout = float(raw_timeout) if raw_timeout else SELFHOSTED_DEFAULT_TIMEOUT[profile]
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= SELFHOSTED_MAX_TIMEOUT:
        raise ProviderConfigError(
            f"SELFHOSTED_TIMEOUT_SECONDS must be a positive number of seconds, at most {SELFHOSTED_MAX_TIMEOUT:g}"
        )
    return SelfhostedSettings(
        base_url=base_url,
        api_key=_key("SELFHOSTED_API_KEY", env.get("SELFHOSTED_API_KEY")),
        model=model,
        voice_registry=_choice(env, "SELFHOSTED_VOICE_REGISTRY", SELFHOSTED_REGISTRY_MODES, "auto"),
        profile=profile,
        modal_key=modal_key,
        modal_secret=modal_secret,
        timeout_s=timeout,
    )


_KEY_VARIABLES: Final = {
    "qwen": "DASHSCOPE_API_KEY",
    "elevenlabs": "ELEVENLABS_API_KEY",
    "cartesia": "CARTESIA_API_KEY",
    "selfhosted": "SELFHOSTED_BASE_URL",
}


def key_variable(provider: str) -> str:
    """The environment variable that makes ``provider`` usable: its API key (its base URL for ``selfhosted``)."""
    return _KEY_VARIABLES[provider]


def provider_settings_from_env(env: Mapping[str, str]) -> ProviderSettings:
    """Read and check every provider setting; raises ``ProviderConfigError`` with a clear message."""
    default = _choice(env, "VOICE_PROVIDER", PROVIDER_NAMES, "local")
    settings = ProviderSettings(
        default_provider=default,
        qwen=_qwen(env),
        elevenlabs=_elevenlabs(env),
        cartesia=_cartesia(env),
        selfhosted=_selfhosted(env),
    )
    if not settings.has_key(default):
        raise ProviderConfigError(f"VOICE_PROVIDER is {default!r} but {key_variable(default)} is not set")
    return settings
