"""Reading a provider's settings from the environment: the checks every adapter's settings share."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from backend.secret import Secret, is_loopback_host


class ProviderConfigError(ValueError):
    """A provider setting is missing or does not fit; the message names the variable, never its value."""


def url_setting(variable: str, value: str, *, path: bool = False) -> tuple[str, str]:
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


def key_setting(variable: str, value: str | None, *, prefix: str | None = None) -> Secret | None:
    """The key in `value` (None when unset), refused when it has whitespace or lacks its provider's `prefix`."""
    if value is None or value == "":
        return None
    if value != value.strip() or any(ch.isspace() for ch in value) or not value.isascii():
        raise ProviderConfigError(f"{variable} contains whitespace or non-ASCII characters")
    if prefix is not None and not value.startswith(prefix):
        raise ProviderConfigError(f"{variable} does not look like a key for this provider (expected {prefix}...)")
    return Secret(value)


def choice_setting(env: Mapping[str, str], variable: str, choices: tuple[str, ...], default: str) -> str:
    """`variable` of `env`, lower-cased, one of `choices` (`default` when unset)."""
    value = env.get(variable, "").strip().lower() or default
    if value not in choices:
        raise ProviderConfigError(f"{variable} must be one of {', '.join(choices)}")
    return value
