"""The project keys embedded mode makes for itself, for what the environment leaves unset: an HS256 JWT
secret kept in the data directory, and the service_role and anon keys derived from it, as the Supabase CLI
does locally. `standins.embedded.with_auth_keys` hands them to `backend.settings.with_auth` in embedded mode."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Final

from backend.auth.config import MIN_SECRET_LENGTH, AuthConfigError
from backend.secret import Secret
from standins.dev_tokens import mint_anon_key, mint_service_key
from standins.private_files import create_private_file_once, others_may_read

JWT_SECRET_FILE: Final = "jwt_secret"  # noqa: S105 - a file name, not a secret


def load_or_create_jwt_secret(data_dir: Path) -> Secret:
    """The embedded-mode HS256 secret kept at ``data_dir/jwt_secret``, created (mode 0600, in a data
    directory created 0700) on first use, atomically (see `create_private_file_once`)."""
    path = data_dir / JWT_SECRET_FILE
    create_private_file_once(path, secrets.token_urlsafe(48) + "\n")
    mode = others_may_read(path)
    if mode is not None:
        raise AuthConfigError(f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")
    value = path.read_text(encoding="ascii").strip()
    if len(value) < MIN_SECRET_LENGTH:
        raise AuthConfigError(f"{path} does not hold a JWT secret of at least {MIN_SECRET_LENGTH} characters")
    return Secret(value)


class DataDirKeys:
    """Embedded mode's keys (`backend.auth.config.DevKeys`), kept under `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def jwt_secret(self) -> Secret:
        """The data directory's JWT secret, created on first use."""
        return load_or_create_jwt_secret(self.data_dir)

    def service_key(self, jwt_secret: Secret) -> Secret:
        """The dev service_role key `jwt_secret` signs (the same one at every start)."""
        return Secret(mint_service_key(jwt_secret))

    def anon_key(self, jwt_secret: Secret) -> str:
        """The dev anon key `jwt_secret` signs (the same one at every start)."""
        return mint_anon_key(jwt_secret)
