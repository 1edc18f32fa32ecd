"""A token the project's secret signed but whose claims no request can use (an expiry past any float, text no
jsonb holds, a time written as text) is a 401 problem on a user route, not a 500 or a pass."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest
from litestar.testing import AsyncTestClient

from tests.integration.api.conftest import JWT_SECRET, User

Client = AsyncTestClient  # type: ignore[type-arg]


async def test_an_expiry_of_ten_to_the_309_is_a_401(client: Client, make_user: Callable[[], User]) -> None:
    user = make_user()
    claims = {"sub": str(user.id), "aud": "authenticated", "role": "authenticated", "iat": int(time.time())}
    token = jwt.encode({**claims, "exp": 10**309}, JWT_SECRET)

    response = await client.get("/v1/reflections", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"
    assert response.json()["detail"] == "The access token's 'exp' claim is out of range."


def _signed(user: User, **claims: object) -> dict[str, str]:
    now = int(time.time())
    base = {"sub": str(user.id), "aud": "authenticated", "role": "authenticated", "iat": now, "exp": now + 600}
    return {"Authorization": f"Bearer {jwt.encode({**base, **claims}, JWT_SECRET)}"}


ROUTES = [
    ("GET", "/api/voices"),
    ("GET", "/v1/webhooks"),
    ("GET", "/api/v1/consents/6f0d3b2c-9b1e-4b8e-8f43-2b7f3e9a1c55"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_validly_signed_claim_holding_half_a_surrogate_pair_is_a_401(
    client: Client, make_user: Callable[[], User], method: str, path: str
) -> None:
    # JSON's "\ud800" decodes to text no jsonb (request.jwt.claims) can hold: 500 on 360a82a.
    user = make_user()
    for claims in ({"email": "\ud800"}, {"user_metadata": {"name": "Ada \udfff"}}, {"session_id": "\ud800\ud800"}):
        response = await client.request(method, path, headers=_signed(user, **claims))

        assert (response.status_code, response.json()["code"]) == (401, "unauthorized"), (claims, response.text)


async def test_an_expiry_written_as_text_is_a_401(client: Client, make_user: Callable[[], User]) -> None:
    # RFC 7519 makes `exp` a JSON number; PyJWT alone takes a string of digits (accepted on 360a82a).
    response = await client.get("/v1/reflections", headers=_signed(make_user(), exp=str(int(time.time()) + 600)))

    assert response.status_code == 401, response.text
    assert response.json()["detail"] == "The access token's 'exp' claim is not a number."
