"""A fake Supabase JWKS endpoint on 127.0.0.1, signing keys, a controllable clock and a verifier."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from backend.auth.config import JWKS_PATH, AuthSettings
from backend.auth.verify import TokenVerifier
from fakes import serve

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

USER_ID = "5f0c7a8e-1d2b-4c3d-8e9f-0a1b2c3d4e5f"


@dataclass
class JwksFake:
    """Serves ``keys`` at the Supabase JWKS path and counts requests.

    ``status`` other than 200 answers with that status; ``body`` overrides the document; ``hang`` makes
    requests wait until ``release`` is set (teardown sets it).
    """

    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    body: bytes | None = None
    hang: bool = False
    requests: int = 0
    release: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        if scope["path"] != JWKS_PATH:
            await self._send(send, 404, b'{"message":"not found"}')
            return
        self.requests += 1
        if self.hang:
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
        body = self.body if self.body is not None else json.dumps({"keys": self.keys}).encode()
        await self._send(send, self.status, body)

    @staticmethod
    async def _send(send: Send, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@dataclass
class FakeClock:
    """Monotonic seconds that only move when a test says so."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class SigningKey:
    """A private key, its ``kid`` and algorithm, and the public JWK the fake publishes."""

    kid: str
    algorithm: str
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @property
    def jwk(self) -> dict[str, Any]:
        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            encoded = ECAlgorithm.to_jwk(self.private.public_key())
        else:
            encoded = RSAAlgorithm.to_jwk(self.private.public_key())
        public: dict[str, Any] = json.loads(encoded)
        return {**public, "kid": self.kid, "alg": self.algorithm, "use": "sig", "key_ops": ["verify"]}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid, **header})


def new_ec_key(kid: str | None = None) -> SigningKey:
    return SigningKey(kid or str(uuid.uuid4()), "ES256", ec.generate_private_key(ec.SECP256R1()))


def user_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "https://abc.supabase.co/auth/v1",
        "sub": USER_ID,
        "aud": "authenticated",
        "role": "authenticated",
        "exp": now + 600,
        "iat": now,
        "email": "grace@example.com",
        "aal": "aal1",
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }
    claims.update(overrides)
    return claims


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    # RSA generation is the slow part; one key per run is plenty.
    return SigningKey("rsa-1", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def ec_key() -> SigningKey:
    return new_ec_key("ec-1")


@pytest.fixture
def jwks(ec_key: SigningKey, rsa_key: SigningKey) -> Iterator[tuple[JwksFake, str]]:
    fake = JwksFake(keys=[ec_key.jwk, rsa_key.jwk])
    with serve(fake) as url:
        try:
            yield fake, url
        finally:
            fake.release.set()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0), trust_env=False) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def verifier(jwks: tuple[JwksFake, str], http: httpx.AsyncClient, clock: FakeClock) -> TokenVerifier:
    return TokenVerifier(AuthSettings(supabase_url=jwks[1]), http, clock=clock)
