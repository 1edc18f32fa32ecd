"""ES256/RS256 access tokens verified against a JWKS served from 127.0.0.1: acceptance, the classic
attacks, key rotation, cache expiry, refresh throttling and an unreachable JWKS endpoint."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backend.auth.config import AuthSettings
from backend.auth.verify import TokenVerifier
from backend.errors import Unauthorized
from backend.secret import Secret
from tests.integration.auth.conftest import USER_ID, FakeClock, JwksFake, SigningKey, new_ec_key, user_claims
from tests.unit.auth.helpers import raw_jwt

HS_SECRET = "project-jwt-secret-with-at-least-32-characters"


async def rejected(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify_user(token)
    assert token not in caught.value.detail
    return caught.value.detail


def public_pem(key: SigningKey) -> bytes:
    return key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- acceptance ------------------------------------------------------------------------------------


async def test_es256_token_is_accepted(verifier: TokenVerifier, ec_key: SigningKey) -> None:
    claims = await verifier.verify_user(ec_key.sign(user_claims(), typ="JWT"))
    assert (claims.sub, claims.email, claims.role, claims.aal) == (
        USER_ID,
        "grace@example.com",
        "authenticated",
        "aal1",
    )
    assert claims.raw["iss"] == "https://abc.supabase.co/auth/v1"


async def test_rs256_token_is_accepted(verifier: TokenVerifier, rsa_key: SigningKey) -> None:
    claims = await verifier.verify_user(rsa_key.sign(user_claims()))
    assert claims.sub == USER_ID


async def test_keys_are_cached(
    verifier: TokenVerifier, jwks: tuple[JwksFake, str], ec_key: SigningKey, rsa_key: SigningKey
) -> None:
    for _ in range(5):
        await verifier.verify_user(ec_key.sign(user_claims()))
        await verifier.verify_user(rsa_key.sign(user_claims()))
    assert jwks[0].requests == 1


async def test_concurrent_cold_start_fetches_once(
    verifier: TokenVerifier, jwks: tuple[JwksFake, str], ec_key: SigningKey
) -> None:
    results = await asyncio.gather(*(verifier.verify_user(ec_key.sign(user_claims())) for _ in range(20)))
    assert {claims.sub for claims in results} == {USER_ID}
    assert jwks[0].requests == 1


async def test_hs256_and_jwks_together(jwks: tuple[JwksFake, str], http: httpx.AsyncClient, ec_key: SigningKey) -> None:
    verifier = TokenVerifier(AuthSettings(supabase_url=jwks[1], jwt_secret=Secret(HS_SECRET)), http)
    assert (await verifier.verify_user(jwt.encode(user_claims(), HS_SECRET))).sub == USER_ID
    assert jwks[0].requests == 0  # HS256 tokens never touch the JWKS
    assert (await verifier.verify_user(ec_key.sign(user_claims()))).sub == USER_ID


# --- the must-fail cases ---------------------------------------------------------------------------


async def test_expired(verifier: TokenVerifier, ec_key: SigningKey) -> None:
    token = ec_key.sign(user_claims(exp=int(time.time()) - 60, iat=int(time.time()) - 3660))
    assert await rejected(verifier, token) == "The access token has expired."


async def test_wrong_audience(verifier: TokenVerifier, rsa_key: SigningKey) -> None:
    assert "audience" in await rejected(verifier, rsa_key.sign(user_claims(aud="anon")))


async def test_wrong_signature(verifier: TokenVerifier, ec_key: SigningKey) -> None:
    impostor = SigningKey(ec_key.kid, "ES256", ec.generate_private_key(ec.SECP256R1()))
    assert await rejected(verifier, impostor.sign(user_claims())) == "The access token's signature is not valid."


async def test_alg_none_with_a_known_kid(verifier: TokenVerifier, ec_key: SigningKey) -> None:
    assert "algorithm" in await rejected(verifier, raw_jwt({"alg": "none", "kid": ec_key.kid}, user_claims()))


@pytest.mark.parametrize("key_name", ["ec_key", "rsa_key"])
async def test_hs256_signed_with_the_public_key_jwks_only(
    verifier: TokenVerifier, key_name: str, request: pytest.FixtureRequest
) -> None:
    key: SigningKey = request.getfixturevalue(key_name)
    token = raw_jwt({"alg": "HS256", "kid": key.kid}, user_claims(), hmac_key=public_pem(key))
    assert "algorithm" in await rejected(verifier, token)


@pytest.mark.parametrize("key_name", ["ec_key", "rsa_key"])
async def test_hs256_signed_with_the_public_key_when_hs256_is_also_configured(
    jwks: tuple[JwksFake, str], http: httpx.AsyncClient, key_name: str, request: pytest.FixtureRequest
) -> None:
    key: SigningKey = request.getfixturevalue(key_name)
    verifier = TokenVerifier(AuthSettings(supabase_url=jwks[1], jwt_secret=Secret(HS_SECRET)), http)
    for hmac_key in (public_pem(key), jwt.utils.force_bytes(str(key.jwk))):
        token = raw_jwt({"alg": "HS256", "kid": key.kid}, user_claims(), hmac_key=hmac_key)
        assert await rejected(verifier, token) == "The access token's signature is not valid."


async def test_header_alg_must_match_the_keys_algorithm(
    verifier: TokenVerifier, ec_key: SigningKey, rsa_key: SigningKey
) -> None:
    # A genuine RS256 signature presented under the EC key's kid, and the reverse.
    assert "algorithm" in await rejected(verifier, rsa_key.sign(user_claims(), kid=ec_key.kid))
    assert "algorithm" in await rejected(verifier, ec_key.sign(user_claims(), kid=rsa_key.kid))


async def test_unknown_kid(verifier: TokenVerifier, jwks: tuple[JwksFake, str]) -> None:
    stranger = new_ec_key("never-published")
    assert await rejected(verifier, stranger.sign(user_claims())) == "The access token is signed with an unknown key."
    assert jwks[0].requests == 1


@pytest.mark.parametrize("kid", [None, ""])
async def test_asymmetric_token_without_a_kid(verifier: TokenVerifier, ec_key: SigningKey, kid: str | None) -> None:
    headers = None if kid is None else {"kid": kid}
    token = jwt.encode(user_claims(), ec_key.private, algorithm="ES256", headers=headers)
    assert "(kid)" in await rejected(verifier, token)


async def test_non_string_kid(verifier: TokenVerifier, jwks: tuple[JwksFake, str]) -> None:
    detail = await rejected(verifier, raw_jwt({"alg": "ES256", "kid": 7}, user_claims()) + "c2ln")
    assert detail in {"The access token is malformed.", "The access token does not name its signing key (kid)."}
    assert jwks[0].requests == 0


async def test_service_role_token_is_not_a_user_token(verifier: TokenVerifier, ec_key: SigningKey) -> None:
    token = ec_key.sign({"iss": "supabase", "role": "service_role", "exp": int(time.time()) + 600})
    assert "'sub'" in await rejected(verifier, token)
    token = ec_key.sign(user_claims(role="service_role"))
    assert await rejected(verifier, token) == "The access token is not a signed-in user's token."


async def test_unusable_jwks_entries_are_ignored(
    jwks: tuple[JwksFake, str], verifier: TokenVerifier, ec_key: SigningKey
) -> None:
    p384 = SigningKey("p384", "ES384", ec.generate_private_key(ec.SECP384R1()))
    p384_jwk = {**p384.jwk, "alg": "ES384"}
    encryption_key = {**new_ec_key("enc").jwk, "use": "enc"}
    mislabelled = {**new_ec_key("mislabelled").jwk, "alg": "RS256"}
    hmac_jwk = {"kty": "oct", "kid": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "alg": "HS256"}
    broken = {"kty": "EC", "crv": "P-256", "kid": "broken", "x": "AAAA", "y": "AAAA"}
    jwks[0].keys = [p384_jwk, encryption_key, mislabelled, hmac_jwk, broken, {"kty": "EC"}, ec_key.jwk]
    assert (await verifier.verify_user(ec_key.sign(user_claims()))).sub == USER_ID
    for kid in ("enc", "mislabelled"):
        assert await rejected(verifier, new_ec_key(kid).sign(user_claims())) == (
            "The access token is signed with an unknown key."
        )
    token = jwt.encode(user_claims(), "secret-secret-secret-secret-secret", algorithm="HS256", headers={"kid": "oct"})
    assert "algorithm" in await rejected(verifier, token)


# --- rotation, expiry and throttling ---------------------------------------------------------------


async def test_rotated_key_is_picked_up_on_an_unknown_kid(
    verifier: TokenVerifier, jwks: tuple[JwksFake, str], ec_key: SigningKey, clock: FakeClock
) -> None:
    fake = jwks[0]
    await verifier.verify_user(ec_key.sign(user_claims()))
    rotated = new_ec_key("ec-2")
    fake.keys = [*fake.keys, rotated.jwk]
    clock.advance(31)  # past the refresh throttle, far inside the 600 s cache lifetime
    assert (await verifier.verify_user(rotated.sign(user_claims()))).sub == USER_ID
    assert fake.requests == 2
    await verifier.verify_user(ec_key.sign(user_claims()))  # the old key still works while published
    assert fake.requests == 2


async def test_unknown_kids_cannot_spray_the_jwks_endpoint(
    verifier: TokenVerifier, jwks: tuple[JwksFake, str], ec_key: SigningKey, clock: FakeClock
) -> None:
    fake = jwks[0]
    await verifier.verify_user(ec_key.sign(user_claims()))
    for i in range(25):
        await rejected(verifier, new_ec_key(f"spray-{i}").sign(user_claims()))
        clock.advance(1)
    assert fake.requests == 1  # 25 s after the first fetch: still throttled
    clock.advance(5)
    for i in range(25):
        await rejected(verifier, new_ec_key(f"spray-again-{i}").sign(user_claims()))
    assert fake.requests == 2  # one refresh once the 30 s window has passed, no more
    assert (await verifier.verify_user(ec_key.sign(user_claims()))).sub == USER_ID
    assert fake.requests == 2


async def test_cache_expires_after_its_ttl(
    verifier: TokenVerifier, jwks: tuple[JwksFake, str], ec_key: SigningKey, clock: FakeClock
) -> None:
    fake = jwks[0]
    await verifier.verify_user(ec_key.sign(user_claims()))
    clock.advance(599)
    await verifier.verify_user(ec_key.sign(user_claims()))
    assert fake.requests == 1
    fake.keys = [key for key in fake.keys if key["kid"] != ec_key.kid]  # the key was revoked
    clock.advance(2)
    assert await rejected(verifier, ec_key.sign(user_claims())) == "The access token is signed with an unknown key."
    assert fake.requests == 2


# --- JWKS endpoint failures ------------------------------------------------------------------------


async def test_jwks_endpoint_down_is_unauthorized_quickly(http: httpx.AsyncClient, ec_key: SigningKey) -> None:
    verifier = TokenVerifier(AuthSettings(supabase_url=closed_port_url()), http)
    started = time.monotonic()
    detail = await rejected(verifier, ec_key.sign(user_claims()))
    assert time.monotonic() - started < 2
    assert detail == "The signing keys needed to check the access token could not be fetched; try again shortly."


async def test_hanging_jwks_endpoint_times_out(
    jwks: tuple[JwksFake, str], http: httpx.AsyncClient, ec_key: SigningKey
) -> None:
    fake, url = jwks
    fake.hang = True
    verifier = TokenVerifier(AuthSettings(supabase_url=url, jwks_timeout=0.3), http)
    started = time.monotonic()
    assert "could not be fetched" in await rejected(verifier, ec_key.sign(user_claims()))
    assert time.monotonic() - started < 2  # the client's own 5 s timeout did not apply
    assert fake.requests == 1


@pytest.mark.parametrize(("status", "body"), [(500, None), (200, b"<html>gateway</html>"), (200, b'{"keys": 7}')])
async def test_bad_jwks_response_then_recovery(
    jwks: tuple[JwksFake, str],
    verifier: TokenVerifier,
    ec_key: SigningKey,
    clock: FakeClock,
    status: int,
    body: bytes | None,
) -> None:
    fake = jwks[0]
    fake.status, fake.body = status, body
    assert "could not be fetched" in await rejected(verifier, ec_key.sign(user_claims()))
    fake.status, fake.body = 200, None
    assert "could not be fetched" in await rejected(verifier, ec_key.sign(user_claims()))
    assert fake.requests == 1  # failures are throttled too: no retry storm against a sick endpoint
    clock.advance(30)
    assert (await verifier.verify_user(ec_key.sign(user_claims()))).sub == USER_ID
    assert fake.requests == 2


async def test_known_keys_survive_a_jwks_outage(
    jwks: tuple[JwksFake, str], verifier: TokenVerifier, ec_key: SigningKey, clock: FakeClock
) -> None:
    fake = jwks[0]
    await verifier.verify_user(ec_key.sign(user_claims()))
    fake.status = 503
    clock.advance(601)
    assert (await verifier.verify_user(ec_key.sign(user_claims()))).sub == USER_ID
    assert fake.requests == 2
    assert "could not be fetched" in await rejected(verifier, new_ec_key("new").sign(user_claims()))
