"""Fixtures for provider adapter tests: fakes served on 127.0.0.1, a shared httpx client."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from fakes import CartesiaFake, ElevenLabsFake, QwenFake, serve
from tests.provider_support import CARTESIA_KEY, ELEVEN_KEY, QWEN_KEY


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0), trust_env=False) as client:
        yield client


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)  # noqa: S311 - seeded jitter keeps runs repeatable


@pytest.fixture
def qwen_fake() -> Iterator[tuple[QwenFake, str]]:
    fake = QwenFake(QWEN_KEY)
    with serve(fake) as url:
        yield fake, url


@pytest.fixture
def eleven_fake() -> Iterator[tuple[ElevenLabsFake, str]]:
    fake = ElevenLabsFake(ELEVEN_KEY)
    with serve(fake) as url:
        yield fake, url


@pytest.fixture
def cartesia_fake() -> Iterator[tuple[CartesiaFake, str]]:
    fake = CartesiaFake(CARTESIA_KEY)
    with serve(fake) as url:
        yield fake, url
