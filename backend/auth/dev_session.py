"""The demo page's session in embedded mode: an access token for the local user, shaped as Supabase Auth issues
them (`POST /dev/session`; the stand-ins make it)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class DevUser(msgspec.Struct, frozen=True):
    """The embedded stack's local user."""

    id: uuid.UUID
    email: str


class DevSession(msgspec.Struct, frozen=True, rename="camel"):
    """An access token for the local user, shaped as Supabase Auth issues them."""

    access_token: str
    expires_at: datetime
    user: DevUser
