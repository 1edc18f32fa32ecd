"""A token the project's secret signed but whose claims no request can use (an expiry past any float)
is a 401 problem on a user route, not a 500."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
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
