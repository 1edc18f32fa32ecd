"""The JWTs inside Storage's signed URLs, signed and checked as Supabase Storage does.

Upload tokens carry `{owner, url: "bucket/path", upsert, scope: "upload", iat, exp}`, download tokens
`{url, scope: "download", iat, exp}`, both HS256 over a secret the caller passes in (the project JWT
secret in practice). Verification checks, in Storage's order, the signature (against a fixed algorithm
list, so a token cannot pick its own), the scope, that `url` names exactly this object, and `exp`.
The scope is required: our tokens always carry one, and requiring it stops any other JWT signed with
the same secret (a user's access token, say) from passing as a URL token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from standins.storage.errors import expired_token, invalid_jwt, invalid_signature

ALGORITHMS = ["HS256"]
Scope = Literal["upload", "download"]


@dataclass(frozen=True)
class UploadGrant:
    """What a verified upload token allows: write `bucket/path` as `owner`, replacing if `upsert`."""

    owner: str | None
    upsert: bool
    expires_at: int


@dataclass(frozen=True)
class DownloadGrant:
    """What a verified download token allows: read `bucket/path` until `expires_at`."""

    expires_at: int


def sign_upload_token(
    secret: str,
    bucket: str,
    path: str,
    *,
    owner: str | None,
    upsert: bool,
    expires_in: int,
    now: int | None = None,
) -> str:
    """An upload token for `bucket/path`, valid `expires_in` seconds from `now` (default: the clock)."""
    claims: dict[str, Any] = {"url": f"{bucket}/{path}", "upsert": upsert, "scope": "upload"}
    # Storage omits `owner` when the service key signed (the object then has no owner).
    if owner is not None:
        claims["owner"] = owner
    return _sign(secret, claims, expires_in, now)


def sign_download_token(secret: str, bucket: str, path: str, *, expires_in: int, now: int | None = None) -> str:
    """A download token for `bucket/path`, valid `expires_in` seconds from `now` (default: the clock)."""
    return _sign(secret, {"url": f"{bucket}/{path}", "scope": "download"}, expires_in, now)


def verify_upload_token(secret: str, token: str, bucket: str, path: str, *, now: int | None = None) -> UploadGrant:
    """The grant of an upload token for exactly `bucket/path`; raises a StorageError otherwise."""
    claims = _verify(secret, token, "upload", f"{bucket}/{path}", now)
    owner = claims.get("owner")
    return UploadGrant(
        owner=owner if isinstance(owner, str) else None,
        upsert=claims.get("upsert") is True,
        expires_at=int(claims["exp"]),
    )


def verify_download_token(secret: str, token: str, bucket: str, path: str, *, now: int | None = None) -> DownloadGrant:
    """The grant of a download token for exactly `bucket/path`; raises a StorageError otherwise."""
    claims = _verify(secret, token, "download", f"{bucket}/{path}", now)
    return DownloadGrant(expires_at=int(claims["exp"]))


def _sign(secret: str, claims: dict[str, Any], expires_in: int, now: int | None) -> str:
    issued = int(time.time()) if now is None else now
    return jwt.encode({**claims, "iat": issued, "exp": issued + expires_in}, secret, algorithm="HS256")


def _verify(secret: str, token: str, scope: Scope, url: str, now: int | None) -> dict[str, Any]:
    try:
        # exp is checked last, by hand, to keep Storage's order (a token for another object is refused
        # as such even when it has also expired) and so tests can pass a clock. Like Storage (jose
        # without maxTokenAge), iat is not judged against the clock.
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=ALGORITHMS,
            options={"verify_exp": False, "verify_iat": False, "require": ["exp", "url"]},
        )
    except jwt.InvalidSignatureError as exc:
        raise invalid_jwt("invalid signature") from exc
    except jwt.PyJWTError as exc:
        raise invalid_jwt("jwt malformed") from exc
    if claims.get("scope") != scope:
        raise invalid_jwt(f"the token is not a signed {scope} token")
    if claims["url"] != url:
        raise invalid_signature("The url do not match the signature")
    exp = claims["exp"]
    if not isinstance(exp, int) or exp <= (int(time.time()) if now is None else now):
        raise expired_token()
    return claims
