"""Auth settings from the environment: how user tokens are verified and which service keys are accepted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol
from urllib.parse import urlsplit

import jwt
import msgspec

from backend.secret import Secret, is_loopback_host

MIN_SECRET_LENGTH: Final = 32
"""HS256 secrets shorter than this (256 bits) are refused; Supabase enforces the same minimum."""
SECRET_KEY_PREFIX: Final = "sb_secret_"  # noqa: S105 - the public prefix of Supabase secret keys
PUBLISHABLE_KEY_PREFIX: Final = "sb_publishable_"
#: Where Supabase Auth lives under a project's URL; its access tokens name it in ``iss``.
AUTH_PATH: Final = "/auth/v1"
#: The domain of Supabase-hosted projects (``https://<ref>.supabase.co``).
HOSTED_DOMAIN: Final = ".supabase.co"
JWKS_PATH: Final = AUTH_PATH + "/.well-known/jwks.json"


class AuthConfigError(ValueError):
    """An auth setting is missing or does not fit; the message names the variable, never its value."""


class DevKeys(Protocol):
    """Where embedded mode takes the keys the environment leaves unset (`standins.dev_keys`)."""

    def jwt_secret(self) -> Secret:
        """The project's HS256 secret."""
        ...

    def service_key(self, jwt_secret: Secret) -> Secret:
        """A service_role key signed with `jwt_secret`."""
        ...

    def anon_key(self, jwt_secret: Secret) -> str:
        """An anon key signed with `jwt_secret`."""
        ...


class AuthSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How access tokens and service keys are checked. Secrets are redacted in ``repr``."""

    supabase_url: str | None = None
    """SUPABASE_URL: project origin; its JWKS verifies ES256/RS256 access tokens."""
    jwt_secret: Secret | None = None
    """SUPABASE_JWT_SECRET: the project's HS256 secret (generated and persisted in embedded mode)."""
    service_role_key: Secret | None = None
    """SUPABASE_SERVICE_ROLE_KEY: legacy service_role JWT (derived from the secret in embedded mode)."""
    secret_key: Secret | None = None
    """SUPABASE_SECRET_KEY: an ``sb_secret_...`` API key."""
    anon_key: str | None = None
    """SUPABASE_PUBLISHABLE_KEY (``sb_publishable_...``) or SUPABASE_ANON_KEY (the legacy anon JWT): public by
    design; the demo page sends it to Supabase Auth to sign users in. Embedded mode mints one when neither
    is set, for Supabase clients of its Storage stand-in."""
    jwks_ttl: float = 600.0
    """Seconds a fetched JWKS is trusted before it is fetched again (Supabase's own edge cache is 10 min)."""
    jwks_min_refresh_interval: float = 30.0
    """Fewest seconds between two JWKS fetches, so tokens with made-up ``kid`` values cannot flood the
    auth server."""
    jwks_timeout: float = 3.0
    """Seconds a JWKS fetch may take before the token is refused."""
    leeway: float = 30.0
    """Clock skew, in seconds, tolerated on ``exp``, ``nbf`` and ``iat``."""
    issuer: str | None = None
    """What a user access token's ``iss`` must be: SUPABASE_JWT_ISSUER, else, for a Supabase-hosted project
    (SUPABASE_URL ``https://<ref>.supabase.co``), the ``<SUPABASE_URL>/auth/v1`` its Auth server signs
    with. None (unchecked) in embedded mode, and for a self-hosted project that names none."""

    @property
    def service_key(self) -> Secret | None:
        """The key voicegate acts as the service with (Storage, the internal routes): the secret API key
        when set, else the legacy service_role JWT."""
        return self.secret_key or self.service_role_key

    @property
    def jwks_url(self) -> str | None:
        """Where the project's public signing keys are published, if SUPABASE_URL is set."""
        return None if self.supabase_url is None else self.supabase_url + JWKS_PATH


def _supabase_url(value: str) -> str:
    parts = urlsplit(value.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in {"http", "https"} or not host:
        raise AuthConfigError("SUPABASE_URL must be an http(s) URL such as https://<ref>.supabase.co")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise AuthConfigError("SUPABASE_URL must use https (plain http is allowed only for loopback)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise AuthConfigError("SUPABASE_URL must not carry credentials, a query or a fragment")
    # A path is allowed: self-hosted gateways may mount Supabase under a prefix.
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _issuer(value: str | None, supabase_url: str | None) -> str | None:
    """SUPABASE_JWT_ISSUER as given, else the issuer of a Supabase-hosted project's Auth server (a
    self-hosted one sets its own, GOTRUE_JWT_ISSUER, which SUPABASE_URL does not tell)."""
    if value is not None:
        if any(ch.isspace() for ch in value):
            raise AuthConfigError("SUPABASE_JWT_ISSUER must not contain whitespace")
        return value
    if supabase_url is None:
        return None
    parts = urlsplit(supabase_url)
    hosted = parts.scheme == "https" and (parts.hostname or "").endswith(HOSTED_DOMAIN) and not parts.path
    return supabase_url + AUTH_PATH if hosted else None


def _token_like(variable: str, value: str) -> Secret:
    if any(ch.isspace() for ch in value) or not value.isascii():
        raise AuthConfigError(f"{variable} contains whitespace or non-ASCII characters")
    return Secret(value)


def _jwt_secret(value: str) -> Secret:
    if len(value) < MIN_SECRET_LENGTH:
        raise AuthConfigError(f"SUPABASE_JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters")
    return Secret(value)


def _service_role_key(value: str) -> Secret:
    key = _token_like("SUPABASE_SERVICE_ROLE_KEY", value)
    if value.count(".") != 2:
        raise AuthConfigError("SUPABASE_SERVICE_ROLE_KEY must be the service_role JWT (three dot-separated parts)")
    return key


def _secret_key(value: str) -> Secret:
    key = _token_like("SUPABASE_SECRET_KEY", value)
    if not value.startswith(SECRET_KEY_PREFIX) or len(value) == len(SECRET_KEY_PREFIX):
        raise AuthConfigError(f"SUPABASE_SECRET_KEY must be a secret API key ({SECRET_KEY_PREFIX}...)")
    return key


def _anon_key(variable: str, value: str) -> str:
    """A key browsers may hold: refused if it is (or looks like) a key with more power than `anon`."""
    _token_like(variable, value)
    if value.startswith(PUBLISHABLE_KEY_PREFIX) and len(value) > len(PUBLISHABLE_KEY_PREFIX):
        return value
    if value.count(".") == 2:
        try:
            role = jwt.decode(value, options={"verify_signature": False}).get("role")
        except jwt.InvalidTokenError:
            role = None
        # Every browser gets this key: a service_role key here would hand out the whole database.
        if role == "anon":
            return value
    raise AuthConfigError(
        f"{variable} must be the project's publishable key ({PUBLISHABLE_KEY_PREFIX}...) or its anon JWT"
        " (role anon); never a secret or service_role key"
    )


def auth_settings_from_env(env: Mapping[str, str], dev: DevKeys | None) -> AuthSettings:
    """Read and check the auth settings; raises ``AuthConfigError`` naming the offending variable.

    Embedded mode (`dev` given) always works without configuration: the HS256 secret, a service_role key
    and an anon key come from `dev` when the environment sets none, and a token's issuer is not checked (the dev
    tokens name none of a project's). Otherwise a way to verify user tokens (SUPABASE_JWT_SECRET or
    SUPABASE_URL) and a service key are required, and user tokens must name the project's Auth server as
    their issuer when it is known (SUPABASE_JWT_ISSUER, or a hosted project's SUPABASE_URL).
    """

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    raw_url, raw_secret = get("SUPABASE_URL"), get("SUPABASE_JWT_SECRET")
    raw_role_key, raw_secret_key = get("SUPABASE_SERVICE_ROLE_KEY"), get("SUPABASE_SECRET_KEY")
    supabase_url = None if raw_url is None else _supabase_url(raw_url)
    jwt_secret = None if raw_secret is None else _jwt_secret(raw_secret)
    service_role_key = None if raw_role_key is None else _service_role_key(raw_role_key)
    secret_key = None if raw_secret_key is None else _secret_key(raw_secret_key)
    public_keys = {
        name: _anon_key(name, v) for name in ("SUPABASE_PUBLISHABLE_KEY", "SUPABASE_ANON_KEY") if (v := get(name))
    }
    anon_key = public_keys.get("SUPABASE_PUBLISHABLE_KEY") or public_keys.get("SUPABASE_ANON_KEY")

    issuer = None if dev is not None else _issuer(get("SUPABASE_JWT_ISSUER"), supabase_url)
    if dev is not None:
        if jwt_secret is None:
            jwt_secret = dev.jwt_secret()
        if service_role_key is None and secret_key is None:
            service_role_key = dev.service_key(jwt_secret)
        if anon_key is None:
            anon_key = dev.anon_key(jwt_secret)
    else:
        if jwt_secret is None and supabase_url is None:
            raise AuthConfigError(
                "set SUPABASE_JWT_SECRET (HS256 projects) or SUPABASE_URL (asymmetric keys via JWKS) "
                "so access tokens can be verified"
            )
        if service_role_key is None and secret_key is None:
            raise AuthConfigError(
                "set SUPABASE_SECRET_KEY (sb_secret_...) or SUPABASE_SERVICE_ROLE_KEY so internal routes "
                "can authenticate callers"
            )
    return AuthSettings(
        supabase_url=supabase_url,
        jwt_secret=jwt_secret,
        service_role_key=service_role_key,
        secret_key=secret_key,
        anon_key=anon_key,
        issuer=issuer,
    )
