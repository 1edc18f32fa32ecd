"""Verify Supabase access tokens (HS256 secret, ES256/RS256 via JWKS) and service keys.

Every failure raises ``Unauthorized`` with a message that says what is wrong without echoing the token.
The algorithm is chosen from a fixed table and each key is bound to exactly one algorithm (RFC 8725
§3.1), so ``alg: none`` and HS256-signed-with-a-public-key tokens are refused before any signature check.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

import httpx
import jwt
import msgspec
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from backend.auth.config import AuthSettings
from backend.errors import AccountGone, Unauthorized
from backend.fields import holds_nul

log = logging.getLogger(__name__)

MAX_TOKEN_LENGTH: Final = 16_384
"""Longer bearer values are refused unparsed; real access tokens are a few KiB at most."""
USER_AUDIENCE: Final = "authenticated"
USER_ROLE: Final = "authenticated"
SERVICE_ROLE: Final = "service_role"
ANON_ROLE: Final = "anon"
_REQUIRED_USER_CLAIMS: Final = ["exp", "sub", "aud"]
_TIME_CLAIMS: Final = ("exp", "nbf", "iat")
VERIFIED_TTL: Final = 60.0
"""Seconds a verified access token is taken again without checking its signature (a client sends the same
token with every request, and checking it costs more than a bare request); its expiry is checked every
time, and a JWKS refresh forgets every token it vouched for."""
VERIFIED_MAX: Final = 1024
"""Most verified tokens remembered (the oldest is forgotten first)."""
GONE_MAX: Final = 10_000
"""Most removed accounts remembered (the oldest is forgotten first, and checked in the database again)."""

_NOT_VALID = "The access token is not valid."
_BAD_ALGORITHM = "The access token is signed with an algorithm this API does not accept."
_KEYS_UNAVAILABLE = "The signing keys needed to check the access token could not be fetched; try again shortly."
_UNKNOWN_KEY = "The access token is signed with an unknown key."

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class UserClaims(msgspec.Struct, frozen=True, kw_only=True):
    """The verified claims of a user access token."""

    sub: str
    """The user id (a UUID string), i.e. ``auth.uid()``."""
    email: str | None
    role: str
    aal: str | None
    session_id: str | None
    raw: dict[str, Any]
    """Every claim, as PostgREST puts them in ``request.jwt.claims``."""


class _JwksDocument(msgspec.Struct):
    keys: list[dict[str, Any]]


class _VerificationKey(msgspec.Struct, frozen=True):
    """A public key from the JWKS and the one algorithm it may be used with."""

    algorithm: str
    key: PublicKey


def bearer_token(authorization_header: str | None) -> str:
    """The token from an ``Authorization: Bearer <token>`` header (scheme is case-insensitive)."""
    if not authorization_header:
        raise Unauthorized("An Authorization: Bearer <access token> header is required.")
    parts = authorization_header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise Unauthorized("The Authorization header must have the form 'Bearer <access token>'.")
    return parts[1]


def _parse_jwk(jwk: dict[str, Any]) -> _VerificationKey | None:
    """The key and its algorithm, or None for keys this API never accepts (wrong type, curve or use)."""
    if jwk.get("use", "sig") != "sig":
        return None
    kty, declared = jwk.get("kty"), jwk.get("alg")
    if kty == "EC" and jwk.get("crv") == "P-256" and declared in {None, "ES256"}:
        ec_key = ECAlgorithm.from_jwk(jwk)
        public_ec = ec_key if isinstance(ec_key, ec.EllipticCurvePublicKey) else ec_key.public_key()
        return _VerificationKey("ES256", public_ec)
    if kty == "RSA" and declared in {None, "RS256"}:
        rsa_key = RSAAlgorithm.from_jwk(jwk)
        public_rsa = rsa_key if isinstance(rsa_key, rsa.RSAPublicKey) else rsa_key.public_key()
        return _VerificationKey("RS256", public_rsa)
    return None


def _user_claims(claims: dict[str, Any]) -> UserClaims:
    try:
        # Remembered as a float with the token; PyJWT takes any integer, 10**309 too, which no float holds.
        float(claims["exp"])
    except OverflowError:
        raise Unauthorized("The access token's 'exp' claim is out of range.") from None
    if holds_nul(claims) or not _utf8(claims):
        # The claims become `request.jwt.claims`, read as jsonb, which holds neither a NUL nor half of a UTF-16
        # surrogate pair (JSON's `"\ud800"` decodes to one, and no UTF-8 text can carry it).
        raise Unauthorized(_NOT_VALID)
    sub = claims["sub"]  # presence and str type are checked by PyJWT (require=["sub"])
    try:
        canonical = str(uuid.UUID(sub)) == sub.lower()
    except ValueError:
        canonical = False
    if not canonical:
        raise Unauthorized("The access token's subject is not a user id.")
    if claims.get("role") != USER_ROLE:
        raise Unauthorized("The access token is not a signed-in user's token.")
    optional: dict[str, str | None] = {}
    for name in ("email", "aal", "session_id"):
        value = claims.get(name)
        if value is not None and not isinstance(value, str):
            raise Unauthorized(f"The access token's {name!r} claim is malformed.")
        optional[name] = value or None
    return UserClaims(
        sub=sub.lower(),
        email=optional["email"],
        role=USER_ROLE,
        aal=optional["aal"],
        session_id=optional["session_id"],
        raw=claims,
    )


def _utf8(claims: dict[str, Any]) -> bool:
    """Whether every text in `claims` can be written as UTF-8."""
    try:
        msgspec.json.encode(claims)
    except UnicodeEncodeError:
        return False
    return True


def _numeric_times(claims: dict[str, Any]) -> None:
    """Refuse a time claim that is not a JSON number: RFC 7519 makes `exp`, `nbf` and `iat` NumericDates, and
    PyJWT would take `"4102444800"` for one."""
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise Unauthorized(f"The access token's {name!r} claim is not a number.")


def _decode(
    token: str,
    key: str | PublicKey,
    algorithm: str,
    *,
    audience: str | None,
    require: list[str],
    leeway: float,
    issuer: str | None = None,
) -> dict[str, Any]:
    """``jwt.decode`` restricted to ``algorithm``, with PyJWT's errors turned into user-facing messages.

    With ``audience=None`` the ``aud`` claim is not checked (legacy API keys have none); with ``issuer``
    the ``iss`` claim must be present and equal it.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": require, "verify_aud": audience is not None, "enforce_minimum_key_length": True},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The access token has expired.") from None
    except jwt.ImmatureSignatureError:
        raise Unauthorized("The access token is not valid yet.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"The access token has no {exc.claim!r} claim.") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized("The access token is not meant for this API (audience).") from None
    except jwt.InvalidIssuerError:
        raise Unauthorized("The access token was not issued by this project's auth server (issuer).") from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("The access token's signature is not valid.") from None
    except jwt.PyJWTError:
        raise Unauthorized(_NOT_VALID) from None
    _numeric_times(claims)
    return claims


class TokenVerifier:
    """Checks bearer credentials against the configured secret, JWKS and service keys.

    One instance per process: it owns the JWKS cache. ``clock`` (monotonic seconds) is injectable so
    cache expiry and refresh throttling can be tested without waiting.
    """

    def __init__(
        self,
        settings: AuthSettings,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._http = http
        self._clock = clock
        self._keys: dict[str, _VerificationKey] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._last_fetch_failed = False
        self._lock = asyncio.Lock()
        #: token -> (its claims, when it was verified (clock), its `exp`)
        self._verified: dict[str, tuple[UserClaims, float, float]] = {}
        #: The user id of each account the database said is gone -> until when (epoch seconds) a token of theirs
        #: may still be presented: the latest `exp` seen, plus the leeway.
        self._gone: dict[str, float] = {}

    async def verify_user(self, token: str) -> UserClaims:
        """Verify a user access token and return its claims; raises ``Unauthorized`` otherwise.

        A token verified in the last `VERIFIED_TTL` seconds is not verified again, only its expiry."""
        remembered = self._verified.get(token)
        if remembered is not None:
            claims, verified_at, expires = remembered
            if time.time() >= expires + self._settings.leeway:
                self._verified.pop(token, None)
                raise Unauthorized("The access token has expired.")
            if self._clock() - verified_at < VERIFIED_TTL:
                self._refuse_if_gone(claims)
                return claims
            self._verified.pop(token, None)
        claims = await self._verify_user(token)
        if len(self._verified) >= VERIFIED_MAX:
            self._verified.pop(next(iter(self._verified)), None)
        self._verified[token] = (claims, self._clock(), float(claims.raw["exp"]))
        self._refuse_if_gone(claims)
        return claims

    def account_gone(self, claims: UserClaims) -> None:
        """Remember that the database found the account of `claims` gone (deleted, or soft-deleted): every later
        token of it is refused here (`AccountGone`), with no database work, until the last one seen expires. An
        account never comes back under the same id, so nothing is forgotten early but the oldest, past
        `GONE_MAX`."""
        until = float(claims.raw["exp"]) + self._settings.leeway
        known = self._gone.pop(claims.sub, None)
        if known is None and len(self._gone) >= GONE_MAX:
            self._gone.pop(next(iter(self._gone)), None)
        self._gone[claims.sub] = until if known is None else max(known, until)

    def _refuse_if_gone(self, claims: UserClaims) -> None:
        until = self._gone.get(claims.sub)
        if until is None:
            return
        if time.time() >= until:
            del self._gone[claims.sub]
            return
        raise AccountGone()

    async def _verify_user(self, token: str) -> UserClaims:
        header = self._header(token)
        algorithm = header.get("alg")
        if not isinstance(algorithm, str):
            raise Unauthorized(_BAD_ALGORITHM)
        if algorithm == "HS256" and self._settings.jwt_secret is not None:
            key: str | PublicKey = self._settings.jwt_secret.reveal()
        elif algorithm in {"ES256", "RS256"} and self._settings.jwks_url is not None:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise Unauthorized("The access token does not name its signing key (kid).")
            found = await self._jwks_key(kid)
            if found.algorithm != algorithm:
                # The key is bound to one algorithm; a header claiming another is a confusion attempt.
                raise Unauthorized(_BAD_ALGORITHM)
            key = found.key
        else:
            raise Unauthorized(_BAD_ALGORITHM)
        claims = _decode(
            token,
            key,
            algorithm,
            audience=USER_AUDIENCE,
            require=_REQUIRED_USER_CLAIMS,
            leeway=self._settings.leeway,
            issuer=self._settings.issuer,
        )
        return _user_claims(claims)

    def verify_service(self, token: str) -> None:
        """Accept the configured secret key or service_role key, or an HS256 service_role JWT signed
        with the project secret; raise ``Unauthorized`` otherwise."""
        settings = self._settings
        # Compare against every configured key (no short-circuit) so timing says nothing about which matched.
        matches = [key.matches(token) for key in (settings.secret_key, settings.service_role_key) if key is not None]
        if any(matches) or self.api_key_role(token) == SERVICE_ROLE:
            return
        raise Unauthorized("A valid service key is required.")

    def api_key_role(self, token: str) -> str | None:
        """The role of a legacy API key signed with the project's HS256 secret (the anon or service_role key:
        an HS256 JWT with a role and an expiry), or None when `token` is not one."""
        settings = self._settings
        if settings.jwt_secret is None or len(token) > MAX_TOKEN_LENGTH:
            return None
        try:
            claims = _decode(
                token,
                settings.jwt_secret.reveal(),
                "HS256",
                # Legacy API keys carry no aud or sub; only their role says what they are.
                audience=None,
                require=["exp", "role"],
                leeway=settings.leeway,
            )
        except Unauthorized:
            return None
        role = claims["role"]
        return role if isinstance(role, str) else None

    @staticmethod
    def _header(token: str) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized(_NOT_VALID)
        try:
            return jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("The access token is malformed.") from None

    def _cached(self, kid: str) -> _VerificationKey | None:
        """The key for ``kid`` if the cache is still fresh and holds it."""
        fresh = self._fetched_at is not None and self._clock() - self._fetched_at < self._settings.jwks_ttl
        return self._keys.get(kid) if fresh else None

    async def _jwks_key(self, kid: str) -> _VerificationKey:
        key = self._cached(kid)
        if key is not None:
            return key
        async with self._lock:
            # Another request may have refreshed while this one waited for the lock.
            key = self._cached(kid)
            if key is not None:
                return key
            now = self._clock()
            throttled = (
                self._last_attempt is not None and now - self._last_attempt < self._settings.jwks_min_refresh_interval
            )
            if not throttled:
                self._last_attempt = now
                self._last_fetch_failed = not await self._refresh()
            # A stale key is still used when the refresh failed or was throttled: an outage of the JWKS
            # endpoint should not sign everybody out. A removed key stops working at the next good fetch.
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized(_KEYS_UNAVAILABLE if self._last_fetch_failed else _UNKNOWN_KEY)
        return key

    async def _refresh(self) -> bool:
        """Fetch the JWKS and replace the cache; False (and the cache kept) when that fails."""
        url = self._settings.jwks_url
        if url is None:
            return False
        try:
            response = await self._http.get(
                url, timeout=self._settings.jwks_timeout, headers={"accept": "application/json"}
            )
            response.raise_for_status()
            document = msgspec.json.decode(response.content, type=_JwksDocument)
        except (httpx.HTTPError, msgspec.DecodeError) as exc:
            log.warning("fetching the JWKS from %s failed: %s", url, type(exc).__name__)
            return False
        keys: dict[str, _VerificationKey] = {}
        for jwk in document.keys:
            kid = jwk.get("kid")
            try:
                parsed = _parse_jwk(jwk)
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                parsed = None
            if isinstance(kid, str) and kid and parsed is not None:
                keys[kid] = parsed
            else:
                log.info("ignoring a JWKS entry this API cannot use (kid=%r, kty=%r)", kid, jwk.get("kty"))
        self._keys = keys
        self._fetched_at = self._clock()
        self._verified.clear()  # a key gone from the JWKS must stop vouching for its tokens now
        return True
