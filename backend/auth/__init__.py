"""Supabase-compatible authentication: settings, access-token and service-key verification, dev tokens."""

from backend.auth.config import AuthConfigError, AuthSettings, auth_settings_from_env
from backend.auth.dev_tokens import mint_service_key, mint_user_token
from backend.auth.verify import TokenVerifier, UserClaims, bearer_token
from backend.secret import Secret

__all__ = [
    "AuthConfigError",
    "AuthSettings",
    "Secret",
    "TokenVerifier",
    "UserClaims",
    "auth_settings_from_env",
    "bearer_token",
    "mint_service_key",
    "mint_user_token",
]
