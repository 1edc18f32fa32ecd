"""Tokens for local development and tests, signed with the project's HS256 secret.

They have the shape Supabase Auth (GoTrue) and the Supabase CLI produce, so everything downstream
(RLS through ``request.jwt.claims``, the service-key check) treats them like the real thing.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Final

import jwt

from backend.auth.config import MIN_SECRET_LENGTH
from backend.secret import Secret

DEV_ISSUER: Final = "voicegate-dev"
SERVICE_KEY_ISSUER: Final = "supabase-demo"
# 2100-01-01T00:00:00Z: the dev service key is a long-lived API key, like the CLI's (which expires in 2032).
SERVICE_KEY_EXPIRES: Final = 4_102_444_800


def _signing_secret(secret: str | Secret) -> str:
    value = secret.reveal() if isinstance(secret, Secret) else secret
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"the HS256 secret must be at least {MIN_SECRET_LENGTH} characters")
    return value


def mint_user_token(
    secret: str | Secret,
    user_id: str | uuid.UUID,
    email: str | None = None,
    ttl_seconds: int = 3600,
    issuer: str = DEV_ISSUER,
) -> str:
    """An HS256 access token for ``user_id`` shaped like one from Supabase Auth, valid ``ttl_seconds``;
    ``issuer`` is its ``iss`` (a project's Auth sets ``https://<ref>.supabase.co/auth/v1``).

    Raises ``ValueError`` when ``user_id`` is not a UUID, ``ttl_seconds`` is not positive or the secret
    is too short.
    """
    sub = str(uuid.UUID(str(user_id)))
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    issued_at = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": sub,
        "aud": "authenticated",
        "exp": issued_at + ttl_seconds,
        "iat": issued_at,
        "email": email or "",
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": issued_at}],
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }
    return jwt.encode(claims, _signing_secret(secret), algorithm="HS256")


def mint_service_key(secret: str | Secret) -> str:
    """A legacy-style ``service_role`` API key signed with ``secret``, as the Supabase CLI mints locally.

    Deterministic (no ``iat``), so the same secret always yields the same key across restarts.
    """
    return _mint_api_key(secret, "service_role")


def mint_anon_key(secret: str | Secret) -> str:
    """A legacy-style ``anon`` API key signed with ``secret``, as the Supabase CLI mints locally
    (supabase/cli pkg/config/apikeys.go ``generateJWT("anon")``: ``{"iss": "supabase-demo", "role": "anon",
    "exp": ...}``, HS256): public by design, it acts as the ``anon`` role. Deterministic, like the service key.
    """
    return _mint_api_key(secret, "anon")


def _mint_api_key(secret: str | Secret, role: str) -> str:
    # The CLI's claim order: iss, role, exp.
    claims = {"iss": SERVICE_KEY_ISSUER, "role": role, "exp": SERVICE_KEY_EXPIRES}
    return jwt.encode(claims, _signing_secret(secret), algorithm="HS256")
