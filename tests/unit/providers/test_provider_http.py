"""Retry client logic with an in-process transport: classification, backoff, Retry-After, creates."""

from __future__ import annotations

import random

import httpx
import pytest

from backend.providers.base import SampleRef, SampleRules
from backend.providers.errors import (
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UnknownOutcomeError,
)
from backend.providers.http import ProviderHttp, RetryPolicy, parse_retry_after, retry_after_from


def classify(response: httpx.Response) -> ProviderError:
    if response.status_code in {429, 500, 502, 503}:
        return TransientProviderError(
            "p", "busy", http_status=response.status_code, retry_after=retry_after_from(response)
        )
    return PermanentProviderError("p", "no", http_status=response.status_code)


def client_with(answers: list[httpx.Response | Exception]) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), seen


def make(client: httpx.AsyncClient, sleeps: list[float], **policy: float) -> ProviderHttp:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return ProviderHttp(
        "p",
        client,
        "https://api.test",
        {"Authorization": "Bearer k"},
        classify,
        policy=RetryPolicy(**policy),
        rng=random.Random(5),  # noqa: S311 - seeded jitter
        sleep=sleep,  # type: ignore[arg-type]
    )


async def test_retries_transient_with_jittered_backoff_then_gives_up() -> None:
    client, seen = client_with([httpx.Response(503)] * 4)
    sleeps: list[float] = []
    async with client:
        with pytest.raises(TransientProviderError):
            await make(client, sleeps).request("GET", "/x")
    assert len(seen) == 4
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps, start=1):
        assert 0.0 <= delay <= 0.5 * 2 ** (attempt - 1)


async def test_retry_after_header_sets_the_wait() -> None:
    client, _ = client_with([httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200)])
    sleeps: list[float] = []
    async with client:
        response = await make(client, sleeps).request("GET", "/x")
    assert response.status_code == 200
    assert sleeps == [3.0]


async def test_permanent_is_not_retried_and_auth_is_only_sent_when_asked() -> None:
    client, seen = client_with([httpx.Response(400), httpx.Response(200)])
    async with client:
        http = make(client, [])
        with pytest.raises(PermanentProviderError):
            await http.request("POST", "/x")
        await http.request("GET", "https://files.test/a.wav", authenticated=False)
    assert len(seen) == 2
    assert seen[0].headers["authorization"] == "Bearer k"
    assert "authorization" not in seen[1].headers


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("dropped"),
        httpx.Response(502),
        httpx.Response(200, content=b"{"),
    ],
)
async def test_create_with_lost_answer_is_unknown_outcome_not_resent(
    failure: httpx.Response | Exception,
) -> None:
    client, seen = client_with([failure, httpx.Response(200, json={})])
    async with client:
        with pytest.raises(UnknownOutcomeError):
            await make(client, []).json("POST", "/create", dict, idempotent=False)
    assert len(seen) == 1


async def test_create_not_sent_is_retried() -> None:
    client, seen = client_with(
        [httpx.ConnectError("refused"), httpx.Response(429), httpx.Response(200, json={"id": 1})]
    )
    async with client:
        body, _ = await make(client, []).json("POST", "/create", dict, idempotent=False)
    assert body == {"id": 1}
    assert len(seen) == 3


async def test_deadline_bounds_total_wait() -> None:
    client, seen = client_with([httpx.Response(429, headers={"Retry-After": "5"})] * 3)
    async with client:
        with pytest.raises(TransientProviderError) as err:
            await make(client, [], deadline_s=4.0).request("GET", "/x")
    assert err.value.retry_after == 5.0
    assert len(seen) == 1


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_sample_rules_list_every_violation() -> None:
    rules = SampleRules(
        formats=frozenset({"audio/wav"}),
        min_duration_s=3.0,
        max_duration_s=60.0,
        recommended_duration_s=(10, 20),
        min_sample_rate=24000,
        preferred_sample_rate=24000,
        max_bytes=10,
        max_files=1,
        mono=True,
        languages=frozenset({"en"}),
    )
    bad = SampleRef(data=b"x" * 11, mime_type="audio/ogg", duration_s=2.0, sample_rate=16000, channels=2)
    assert rules.violations([bad, bad], "de-DE") == [
        "at most 1 sample(s) can be sent",
        "unsupported audio format",
        "sample too large (max 0 MB)",
        "sample too short",
        "sample rate too low (min 24000 Hz)",
        "sample must be mono",
        "unsupported audio format",
        "sample too large (max 0 MB)",
        "sample too short",
        "sample rate too low (min 24000 Hz)",
        "sample must be mono",
        "language 'de-DE' is not supported (only en)",
    ]
    good = SampleRef(data=b"x", mime_type="audio/wav", duration_s=12.0, sample_rate=24000, channels=1)
    assert rules.violations([good], "en-US") == []
