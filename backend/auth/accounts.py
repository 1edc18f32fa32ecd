"""Whether a verified token's account is still there, asked of the database before a route reads the body.

A signed, unexpired token outlives its user by up to its expiry. Every unit of work a user's request runs checks the
account in its opening statement (`voicegate.require_user`), so a route that works in the database refuses a removed
user there, at no extra cost. A route that reads an upload before it touches the database, or never touches it
(a provenance check), and any route that is about to refuse the body it read, asks here first. Whatever the
database says is gone, the token verifier remembers (`TokenVerifier.account_gone`), so the same account's next
request is refused before any database work or body: the cheapest answer the API has.
"""

from __future__ import annotations

from pathlib import Path

from backend.auth.verify import TokenVerifier, UserClaims
from backend.db.queries import load_queries
from backend.db.units import Database
from backend.errors import AccountGone

_Q = load_queries(Path(__file__).with_suffix(".sql"))


async def require_account(db: Database, verifier: TokenVerifier, claims: UserClaims) -> None:
    """Raise AccountGone, and have `verifier` remember it, when the account of `claims` no longer exists (one read
    as the caller: one round trip)."""
    try:
        async with db.user_statement(claims.raw) as conn:
            await conn.execute(_Q["account"])
    except AccountGone:
        verifier.account_gone(claims)
        raise
