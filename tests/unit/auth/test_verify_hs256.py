"""User tokens signed with the project's HS256 secret, service keys and the bearer header.

No JWKS is involved: the verifier's HTTP client fails the test if it is ever used.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from backend.auth.config import AuthSettings
from backend.auth.verify import VERIFIED_TTL, TokenVerifier, bearer_token
from backend.errors import AccountGone, Unauthorized
from backend.secret import Secret
from standins.dev_tokens import mint_service_key, mint_user_token
from tests.unit.auth.helpers import raw_jwt

SECRET = "project-jwt-secret-with-at-least-32-characters"
OTHER_SECRET = "another-project-secret-of-sufficient-length!!"
SB_SECRET = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
USER_ID = "0b7b2b6e-3f36-4c55-9e3a-6a3fb7c1d2e4"


def legacy_key(secret: str, role: str, **extra: Any) -> str:
    return jwt.encode({"iss": "supabase", "ref": "abc", "role": role, "exp": 4_000_000_000, **extra}, secret)


SERVICE_ROLE_KEY = legacy_key(SECRET, "service_role", iat=1_700_000_000)


def user_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": USER_ID,
        "aud": "authenticated",
        "role": "authenticated",
        "exp": now + 600,
        "iat": now,
        "email": "ada@example.com",
        "aal": "aal1",
        "session_id": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected HTTP request to {request.url}")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(no_network)) as client:
        yield client


@pytest.fixture
def verifier(http: httpx.AsyncClient) -> TokenVerifier:
    settings = AuthSettings(
        jwt_secret=Secret(SECRET), secret_key=Secret(SB_SECRET), service_role_key=Secret(SERVICE_ROLE_KEY)
    )
    return TokenVerifier(settings, http)


async def rejected(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify_user(token)
    if token:
        assert token not in caught.value.detail
    return caught.value.detail


async def test_minted_dev_token_is_accepted(verifier: TokenVerifier) -> None:
    token = mint_user_token(SECRET, USER_ID, email="ada@example.com")
    claims = await verifier.verify_user(token)
    assert (claims.sub, claims.email, claims.role, claims.aal) == (USER_ID, "ada@example.com", "authenticated", "aal1")
    assert claims.session_id is not None
    assert uuid.UUID(claims.session_id)
    assert claims.raw["iss"] == "voicegate-dev"
    assert claims.raw["is_anonymous"] is False
    assert claims.raw["exp"] - claims.raw["iat"] == 3600


async def test_dev_token_without_email_has_no_email(verifier: TokenVerifier) -> None:
    claims = await verifier.verify_user(mint_user_token(Secret(SECRET), uuid.UUID(USER_ID), ttl_seconds=60))
    assert claims.email is None
    assert claims.raw["email"] == ""


async def test_supabase_shaped_token_is_accepted(verifier: TokenVerifier) -> None:
    claims = await verifier.verify_user(jwt.encode(user_claims(sub=USER_ID.upper()), SECRET, headers={"kid": "x"}))
    assert claims.sub == USER_ID  # normalised to the lower-case form auth.uid() prints
    assert claims.raw["sub"] == USER_ID.upper()


async def test_expired_token(verifier: TokenVerifier) -> None:
    token = jwt.encode(user_claims(exp=int(time.time()) - 120, iat=int(time.time()) - 3720), SECRET)
    assert await rejected(verifier, token) == "The access token has expired."


async def test_expiry_within_leeway_is_tolerated(verifier: TokenVerifier) -> None:
    claims = await verifier.verify_user(jwt.encode(user_claims(exp=int(time.time()) - 5), SECRET))
    assert claims.sub == USER_ID


async def test_token_from_the_future(verifier: TokenVerifier) -> None:
    token = jwt.encode(user_claims(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200), SECRET)
    assert await rejected(verifier, token) == "The access token is not valid yet."


@pytest.mark.parametrize("aud", ["anon", "service_role", ["other"], "Authenticated"])
async def test_wrong_audience(verifier: TokenVerifier, aud: Any) -> None:
    detail = await rejected(verifier, jwt.encode(user_claims(aud=aud), SECRET))
    assert "audience" in detail


@pytest.mark.parametrize("claim", ["exp", "sub", "aud"])
async def test_required_claims(verifier: TokenVerifier, claim: str) -> None:
    detail = await rejected(verifier, jwt.encode(user_claims(**{claim: None}), SECRET))
    assert detail == f"The access token has no {claim!r} claim."


@pytest.mark.parametrize(
    "sub", ["user-1", "0b7b2b6e3f364c559e3a6a3fb7c1d2e4", "{0b7b2b6e-3f36-4c55-9e3a-6a3fb7c1d2e4}"]
)
async def test_subject_must_be_a_uuid(verifier: TokenVerifier, sub: str) -> None:
    assert await rejected(verifier, jwt.encode(user_claims(sub=sub), SECRET)) == (
        "The access token's subject is not a user id."
    )


@pytest.mark.parametrize("role", ["anon", "service_role", "postgres", None])
async def test_only_authenticated_role(verifier: TokenVerifier, role: str | None) -> None:
    detail = await rejected(verifier, jwt.encode(user_claims(role=role), SECRET))
    assert detail == "The access token is not a signed-in user's token."


async def test_malformed_optional_claim(verifier: TokenVerifier) -> None:
    detail = await rejected(verifier, jwt.encode(user_claims(email=["a@b.c"]), SECRET))
    assert detail == "The access token's 'email' claim is malformed."


async def test_an_expiry_no_number_can_hold_is_refused(verifier: TokenVerifier) -> None:
    # Signed by the project: a valid JSON number, an integer PyJWT takes, and more than a float holds.
    detail = await rejected(verifier, jwt.encode(user_claims(exp=10**309), SECRET))
    assert detail == "The access token's 'exp' claim is out of range."


async def test_a_claim_holding_a_nul_is_refused(verifier: TokenVerifier) -> None:
    detail = await rejected(verifier, jwt.encode(user_claims(user_metadata={"name": "Ada\u0000"}), SECRET))
    assert detail == "The access token is not valid."


@pytest.mark.parametrize(("claim", "value"), [("exp", "4102444800"), ("nbf", "0"), ("iat", "0"), ("iat", True)])
async def test_a_time_claim_must_be_a_json_number(verifier: TokenVerifier, claim: str, value: Any) -> None:
    # RFC 7519 §2: a NumericDate is a JSON number; PyJWT alone takes a string of digits for one.
    detail = await rejected(verifier, jwt.encode(user_claims(**{claim: value}), SECRET))
    assert detail == f"The access token's {claim!r} claim is not a number."


async def test_a_time_claim_may_be_a_fraction(verifier: TokenVerifier) -> None:
    claims = await verifier.verify_user(jwt.encode(user_claims(iat=time.time() - 1.5, nbf=time.time() - 1.5), SECRET))
    assert claims.sub == USER_ID


@pytest.mark.parametrize("where", ["email", "user_metadata", "a key"])
async def test_a_claim_holding_half_a_surrogate_pair_is_refused(verifier: TokenVerifier, where: str) -> None:
    # JSON's "\ud800" is valid JSON that no UTF-8 text (so no jsonb) can hold.
    claims = {
        "email": user_claims(email="\ud800@example.com"),
        "user_metadata": user_claims(user_metadata={"name": "Ada \ud800"}),
        "a key": user_claims(user_metadata={"\udfff": "x"}),
    }[where]
    detail = await rejected(verifier, jwt.encode(claims, SECRET))
    assert detail == "The access token is not valid."


ISSUER = "https://abcdefghijklmnop.supabase.co/auth/v1"


@pytest.fixture
def issuer_verifier(http: httpx.AsyncClient) -> TokenVerifier:
    return TokenVerifier(AuthSettings(jwt_secret=Secret(SECRET), issuer=ISSUER), http)


async def test_a_token_from_the_projects_auth_server_is_accepted(issuer_verifier: TokenVerifier) -> None:
    claims = await issuer_verifier.verify_user(jwt.encode(user_claims(iss=ISSUER), SECRET))
    assert claims.sub == USER_ID


@pytest.mark.parametrize(
    "iss", ["https://otherproject000000.supabase.co/auth/v1", ISSUER + "/", "supabase", "voicegate-dev"]
)
async def test_a_token_another_issuer_signed_is_refused(issuer_verifier: TokenVerifier, iss: Any) -> None:
    detail = await rejected(issuer_verifier, jwt.encode(user_claims(iss=iss), SECRET))
    assert detail == "The access token was not issued by this project's auth server (issuer)."


async def test_a_token_naming_no_issuer_is_refused_when_one_is_expected(issuer_verifier: TokenVerifier) -> None:
    assert await rejected(issuer_verifier, jwt.encode(user_claims(), SECRET)) == "The access token has no 'iss' claim."


async def test_without_an_expected_issuer_any_is_accepted(verifier: TokenVerifier) -> None:
    for iss in (ISSUER, "voicegate-dev", None):
        assert (await verifier.verify_user(jwt.encode(user_claims(iss=iss), SECRET))).sub == USER_ID


async def test_wrong_signature(verifier: TokenVerifier) -> None:
    detail = await rejected(verifier, jwt.encode(user_claims(), OTHER_SECRET))
    assert detail == "The access token's signature is not valid."


async def test_tampered_payload(verifier: TokenVerifier) -> None:
    header, _, signature = jwt.encode(user_claims(), SECRET).split(".")
    forged_payload = jwt.encode(user_claims(sub=str(uuid.uuid4())), SECRET).split(".")[1]
    detail = await rejected(verifier, f"{header}.{forged_payload}.{signature}")
    assert detail == "The access token's signature is not valid."


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
async def test_alg_none(verifier: TokenVerifier, alg: str) -> None:
    token = raw_jwt({"alg": alg, "typ": "JWT"}, user_claims())
    assert "algorithm" in await rejected(verifier, token)


async def test_alg_none_with_a_signature_copied_from_a_real_token(verifier: TokenVerifier) -> None:
    signature = jwt.encode(user_claims(), SECRET).split(".")[2]
    token = raw_jwt({"alg": "none"}, user_claims()) + signature
    assert "algorithm" in await rejected(verifier, token)


@pytest.mark.parametrize("alg", ["HS384", "HS512", "ES256K", "PS256", "EdDSA"])
async def test_algorithms_outside_the_fixed_list(verifier: TokenVerifier, alg: str) -> None:
    token = raw_jwt({"alg": alg}, user_claims(), hmac_key=SECRET.encode())
    assert "algorithm" in await rejected(verifier, token)


async def test_hs384_signed_with_the_project_secret(verifier: TokenVerifier) -> None:
    token = jwt.encode(user_claims(), SECRET + SECRET, algorithm="HS384")
    assert "algorithm" in await rejected(verifier, token)


async def test_hs256_refused_when_only_jwks_is_configured(http: httpx.AsyncClient) -> None:
    verifier = TokenVerifier(AuthSettings(supabase_url="https://abc.supabase.co"), http)
    assert "algorithm" in await rejected(verifier, jwt.encode(user_claims(), SECRET))


async def test_asymmetric_refused_when_no_jwks_is_configured(verifier: TokenVerifier) -> None:
    token = raw_jwt({"alg": "ES256", "kid": "k1"}, user_claims(), hmac_key=SECRET.encode())
    assert "algorithm" in await rejected(verifier, token)


@pytest.mark.parametrize("header", [{"alg": ["HS256"]}, {"alg": None}, {}])
async def test_non_string_algorithm(verifier: TokenVerifier, header: dict[str, Any]) -> None:
    assert "algorithm" in await rejected(verifier, raw_jwt(header, user_claims(), hmac_key=SECRET.encode()))


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "!!.??.**", "x" * 20_000])
async def test_garbage(verifier: TokenVerifier, token: str) -> None:
    assert await rejected(verifier, token) in {"The access token is malformed.", "The access token is not valid."}


# --- service keys ---------------------------------------------------------------------------------


def test_secret_api_key_is_a_service_credential(verifier: TokenVerifier) -> None:
    verifier.verify_service(SB_SECRET)


def test_configured_service_role_key_is_a_service_credential(verifier: TokenVerifier) -> None:
    verifier.verify_service(SERVICE_ROLE_KEY)


def test_any_service_role_jwt_signed_with_the_project_secret(verifier: TokenVerifier) -> None:
    verifier.verify_service(mint_service_key(SECRET))
    verifier.verify_service(legacy_key(SECRET, "service_role", ref="other"))


@pytest.mark.parametrize(
    "token",
    [
        SB_SECRET + "x",
        SB_SECRET[:-1],
        SB_SECRET.upper(),
        "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH",
        "",
        "sb_secret_ünïcode",
        legacy_key(OTHER_SECRET, "service_role"),  # right role, wrong secret
        legacy_key(SECRET, "anon"),
        legacy_key(SECRET, "service_role", exp=int(time.time()) - 3600),
        jwt.encode({"iss": "supabase", "role": "service_role"}, SECRET),  # no exp
        mint_user_token(SECRET, USER_ID),  # a user is not a service
        raw_jwt({"alg": "none"}, {"role": "service_role", "exp": 4_000_000_000}),
        jwt.encode({"role": "service_role", "exp": 4_000_000_000}, SECRET + SECRET, algorithm="HS384"),
    ],
)
def test_everything_else_is_refused_as_a_service_credential(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(Unauthorized, match="A valid service key is required"):
        verifier.verify_service(token)


def test_service_jwts_need_the_project_secret(http: httpx.AsyncClient) -> None:
    verifier = TokenVerifier(AuthSettings(supabase_url="https://abc.supabase.co", secret_key=Secret(SB_SECRET)), http)
    verifier.verify_service(SB_SECRET)
    with pytest.raises(Unauthorized):
        verifier.verify_service(mint_service_key(SECRET))


async def test_service_key_is_not_a_user_token(verifier: TokenVerifier) -> None:
    await rejected(verifier, mint_service_key(SECRET))
    await rejected(verifier, SERVICE_ROLE_KEY)


# --- Authorization header -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["Bearer abc.def.ghi", "bearer abc.def.ghi", "BEARER  abc.def.ghi ", "\tBearer abc.def.ghi"]
)
def test_bearer_token(header: str) -> None:
    assert bearer_token(header) == "abc.def.ghi"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a b", "abc.def.ghi"])
def test_bearer_token_refused(header: str | None) -> None:
    with pytest.raises(Unauthorized) as caught:
        bearer_token(header)
    assert "Bearer" in caught.value.detail
    if header and len(header) > 8:
        assert header.split()[-1] not in caught.value.detail


# --- dev tokens -----------------------------------------------------------------------------------


def test_mint_user_token_shape() -> None:
    token = mint_user_token(SECRET, USER_ID, email="ada@example.com", ttl_seconds=120)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="authenticated")
    expected = {"sub", "aud", "role", "email", "iat", "exp", "iss", "aal", "session_id", "is_anonymous"}
    assert expected <= claims.keys()
    assert claims["exp"] - claims["iat"] == 120
    assert (claims["role"], claims["aal"], claims["iss"]) == ("authenticated", "aal1", "voicegate-dev")
    assert mint_user_token(SECRET, USER_ID) != mint_user_token(SECRET, USER_ID)  # a new session each time


@pytest.mark.parametrize(
    ("secret", "user_id", "ttl"),
    [(SECRET, "not-a-uuid", 60), (SECRET, USER_ID, 0), ("short", USER_ID, 60)],
)
def test_mint_user_token_refuses_bad_input(secret: str, user_id: str, ttl: int) -> None:
    with pytest.raises(ValueError, match=r"UUID|ttl_seconds|at least 32"):
        mint_user_token(secret, user_id, ttl_seconds=ttl)


async def test_a_verified_token_is_checked_again_only_after_a_while(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    verifier = TokenVerifier(AuthSettings(jwt_secret=Secret(SECRET)), http, clock=lambda: now[0])
    decoded: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    token = jwt.encode(user_claims(), SECRET)
    first = await verifier.verify_user(token)
    assert await verifier.verify_user(token) == first
    assert len(decoded) == 1
    now[0] += VERIFIED_TTL
    assert await verifier.verify_user(token) == first
    assert len(decoded) == 2
    # Another token, even one differing only in its signature, is verified on its own.
    signing_input, signature = token.rsplit(".", 1)
    forged = f"{signing_input}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    assert await rejected(verifier, forged) == "The access token's signature is not valid."
    assert len(decoded) == 3


async def test_a_remembered_token_still_expires(verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch) -> None:
    issued = time.time()
    token = jwt.encode(user_claims(exp=int(issued) + 5), SECRET)
    assert (await verifier.verify_user(token)).sub == USER_ID
    # Past its expiry and the leeway (30 s), the remembered token is refused without a new check.
    monkeypatch.setattr(time, "time", lambda: issued + 40)
    assert await rejected(verifier, token) == "The access token has expired."


async def test_an_account_the_database_found_gone_is_refused_with_any_of_its_tokens(http: httpx.AsyncClient) -> None:
    verifier = TokenVerifier(AuthSettings(jwt_secret=Secret(SECRET)), http)
    token, later = jwt.encode(user_claims(), SECRET), jwt.encode(user_claims(exp=int(time.time()) + 900), SECRET)
    other = jwt.encode(user_claims(sub=str(uuid.uuid4())), SECRET)
    verifier.account_gone(await verifier.verify_user(token))

    for refused in (token, later):
        with pytest.raises(AccountGone):
            await verifier.verify_user(refused)
    assert (await verifier.verify_user(other)).sub != USER_ID


async def test_a_gone_account_is_forgotten_once_its_last_token_has_expired_or_past_the_bound(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = TokenVerifier(AuthSettings(jwt_secret=Secret(SECRET), leeway=0), http)
    expiring = int(time.time()) + 60
    verifier.account_gone(await verifier.verify_user(jwt.encode(user_claims(exp=expiring), SECRET)))
    # A token of the same account that outlives the one refused: the database is asked again, once its time is up.
    outliving = jwt.encode(user_claims(exp=expiring + 600), SECRET)
    with pytest.raises(AccountGone):
        await verifier.verify_user(outliving)
    # (PyJWT reads its own clock: only the verifier's memory is moved past the refused token's expiry.)
    monkeypatch.setattr("backend.auth.verify.time.time", lambda: expiring + 1.0)
    assert (await verifier.verify_user(outliving)).sub == USER_ID
    monkeypatch.undo()

    monkeypatch.setattr("backend.auth.verify.GONE_MAX", 2)
    subs = [str(uuid.uuid4()) for _ in range(3)]
    for sub in subs:
        verifier.account_gone(await verifier.verify_user(jwt.encode(user_claims(sub=sub), SECRET)))
    assert (await verifier.verify_user(jwt.encode(user_claims(sub=subs[0]), SECRET))).sub == subs[0]
    with pytest.raises(AccountGone):
        await verifier.verify_user(jwt.encode(user_claims(sub=subs[2]), SECRET))
