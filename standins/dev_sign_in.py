"""The demo page's sign-in in embedded mode: an access token for the local user of the embedded auth.users,
shaped as Supabase Auth issues them (`standins.embedded` hands it to the route `backend.http.routes.dev_session`,
which answers loopback callers only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from backend.auth.dev_session import DevSession, DevUser
from backend.db.units import Database
from backend.secret import Secret
from standins.dev_tokens import mint_user_token
from standins.dev_users import DEV_USER_EMAIL, find_or_create_dev_user

DEV_SESSION_TTL_SECONDS: Final = 12 * 3600


async def open_dev_session(db: Database, secret: Secret) -> DevSession:
    """A session for the local user (created on first use), its token signed with the project's JWT secret."""
    async with db.work() as conn:
        user_id, email = await find_or_create_dev_user(conn, DEV_USER_EMAIL)
    token = mint_user_token(secret, user_id, email=email, ttl_seconds=DEV_SESSION_TTL_SECONDS)
    expires_at = datetime.now(UTC) + timedelta(seconds=DEV_SESSION_TTL_SECONDS)
    return DevSession(access_token=token, expires_at=expires_at, user=DevUser(user_id, email))
