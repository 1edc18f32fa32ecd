"""Storage URL tokens: exact claims, and every reason verification refuses one."""

from __future__ import annotations

import time

import jwt
import pytest

from standins.storage.errors import StorageError
from standins.storage.tokens import (
    sign_download_token,
    sign_upload_token,
    verify_download_token,
    verify_upload_token,
)

# 64 bytes, so PyJWT accepts it for HS512 too (the algorithm-list test signs with HS512).
SECRET = "unit-test-secret-0123456789abcdef-0123456789abcdef-0123456789abc"
NOW = 1_800_000_000


def claims(token: str) -> dict[str, object]:
    return jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False})


def code_of(call: object) -> str:
    assert callable(call)
    with pytest.raises(StorageError) as refused:
        call()
    return refused.value.code


def test_upload_token_claims_are_storages() -> None:
    token = sign_upload_token(SECRET, "b", "u/a.wav", owner="u", upsert=True, expires_in=7200, now=NOW)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert claims(token) == {
        "owner": "u",
        "url": "b/u/a.wav",
        "upsert": True,
        "scope": "upload",
        "iat": NOW,
        "exp": NOW + 7200,
    }
    grant = verify_upload_token(SECRET, token, "b", "u/a.wav", now=NOW + 10)
    assert (grant.owner, grant.upsert, grant.expires_at) == ("u", True, NOW + 7200)


def test_service_signed_upload_token_has_no_owner() -> None:
    token = sign_upload_token(SECRET, "b", "a.wav", owner=None, upsert=False, expires_in=60, now=NOW)
    assert "owner" not in claims(token)
    assert verify_upload_token(SECRET, token, "b", "a.wav", now=NOW).owner is None


def test_download_token_claims_are_storages() -> None:
    token = sign_download_token(SECRET, "b", "u/a.wav", expires_in=60, now=NOW)
    assert claims(token) == {"url": "b/u/a.wav", "scope": "download", "iat": NOW, "exp": NOW + 60}
    assert verify_download_token(SECRET, token, "b", "u/a.wav", now=NOW + 59).expires_at == NOW + 60


def test_scope_path_expiry_and_signature_are_all_checked() -> None:
    up = sign_upload_token(SECRET, "b", "p", owner="u", upsert=False, expires_in=60, now=NOW)
    down = sign_download_token(SECRET, "b", "p", expires_in=60, now=NOW)
    assert code_of(lambda: verify_download_token(SECRET, up, "b", "p", now=NOW)) == "InvalidJWT"
    assert code_of(lambda: verify_upload_token(SECRET, down, "b", "p", now=NOW)) == "InvalidJWT"
    assert code_of(lambda: verify_download_token(SECRET, down, "b", "q", now=NOW)) == "InvalidSignature"
    assert code_of(lambda: verify_download_token(SECRET, down, "c", "p", now=NOW)) == "InvalidSignature"
    assert code_of(lambda: verify_download_token(SECRET, down, "b", "p", now=NOW + 60)) == "ExpiredToken"
    assert code_of(lambda: verify_upload_token(SECRET, up, "b", "p", now=NOW + 61)) == "ExpiredToken"
    other = "other-secret-0123456789abcdef-0123456789abc"
    assert code_of(lambda: verify_download_token(other, down, "b", "p", now=NOW)) == "InvalidJWT"
    assert code_of(lambda: verify_download_token(SECRET, down[:-2] + "xx", "b", "p", now=NOW)) == "InvalidJWT"
    assert code_of(lambda: verify_download_token(SECRET, "not-a-jwt", "b", "p", now=NOW)) == "InvalidJWT"


def test_a_token_must_carry_its_scope_and_use_hs256() -> None:
    exp = int(time.time()) + 60
    # A legacy-style token without scope, e.g. any other JWT signed with the project secret.
    legacy = jwt.encode({"url": "b/p", "exp": exp, "iat": NOW}, SECRET, algorithm="HS256")
    assert code_of(lambda: verify_download_token(SECRET, legacy, "b", "p")) == "InvalidJWT"
    # The algorithm list is fixed: HS512 with the same secret is not accepted.
    hs512 = jwt.encode({"url": "b/p", "scope": "download", "exp": exp, "iat": NOW}, SECRET, algorithm="HS512")
    assert code_of(lambda: verify_download_token(SECRET, hs512, "b", "p")) == "InvalidJWT"
    unsigned = jwt.encode({"url": "b/p", "scope": "download", "exp": exp, "iat": NOW}, None, algorithm="none")
    assert code_of(lambda: verify_download_token(SECRET, unsigned, "b", "p")) == "InvalidJWT"
