"""Schemathesis against a real `voicegate up`: requests generated from the OpenAPI document alone, valid
and invalid, with a dev user's token. Whatever it sends, nothing answers 5xx, every status is one the
document lists, and every body matches its documented schema and content type.

Two kinds of value once answered 500 and are sent on purpose, so that class stays closed: a NUL character
(which PostgreSQL's text cannot hold) in a string, and a number no float holds (10**309), in a body or
query field and as the `exp` of a token the project's own secret signed. Random examples may carry one;
and each field of each operation gets both, once, in `test_every_field_takes_a_nul_and_a_huge_number`.
A Host header that is not a host is a 400, logged nowhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from backend.app import create_app
from backend.settings import settings_from_env
from devkit.up import Running, dev_token, running_up
from standins.dev_keys import JWT_SECRET_FILE
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.conftest import server_dir

pytestmark = pytest.mark.timeout(300)
#: Examples per operation and mode: enough to reach every field and kinds of wrong value, bounded for CI.
EXAMPLES = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
NUL = "\x00"
#: A JSON number, and an integer Python takes, that no float holds.
HUGE = 10**309


def _document() -> schemathesis.BaseSchema:
    """The document `voicegate up` serves, built from the handlers alone (no database is contacted), so
    operations are known when the tests are collected; the test checks it equals the served one."""
    settings_ = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": str(Path("/nonexistent"))}), {"SUPABASE_JWT_SECRET": "d" * 40}
    )
    document = create_app(
        settings_, "postgresql://nobody@127.0.0.1:1/none", embedded=EMBEDDED
    ).openapi_schema.to_schema()
    return schemathesis.openapi.from_dict(document)


SCHEMA = _document()
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[Running, list[str]]]:
    """One `voicegate up` for every generated request, and a dev user's tokens: a good one, and one the
    project's secret signed whose `exp` is 10**309."""
    with server_dir("fuzz") as root, running_up(root) as up:
        token = dev_token(up, "fuzz@example.test")
        secret = (up.pg.data_dir.parent / JWT_SECRET_FILE).read_text().strip()
        claims = jwt.decode(token, secret, algorithms=["HS256"], audience="authenticated")
        yield up, [token, jwt.encode({**claims, "exp": HUGE}, secret)]


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


def spoilt(case: schemathesis.Case) -> Iterator[schemathesis.Case]:
    """`case` once for each string of its body and query with a NUL in it, and each number made HUGE."""
    for part in ("body", "query"):
        container = getattr(case, part)
        if not isinstance(container, dict | list):
            continue
        for path, leaf in _leaves(container):
            if isinstance(leaf, str):
                new: Any = leaf[:1] + NUL + leaf[1:]
            elif isinstance(leaf, int | float) and not isinstance(leaf, bool):
                new = HUGE
            else:
                continue
            variant = case.derive()
            setattr(variant, part, _replaced(container, path, new))
            yield variant


def test_the_served_document_is_the_one_fuzzed(api: tuple[Running, list[str]]) -> None:
    running, _ = api
    served = schemathesis.openapi.from_url(f"{running.base_url}/schema/openapi.json")
    assert sorted(op.ok().label for op in served.get_all_operations()) == sorted(op.label for op in OPERATIONS)


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_generated_requests_get_documented_answers(
    operation: schemathesis.APIOperation, api: tuple[Running, list[str]]
) -> None:
    running, tokens = api
    modes = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=modes, token=st.sampled_from(tokens), data=st.data())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def answers_as_documented(case: schemathesis.Case, token: str, data: st.DataObject) -> None:
        variants = list(spoilt(case))
        if variants and data.draw(st.booleans(), label="spoil a field"):
            case = data.draw(st.sampled_from(variants), label="spoilt field")
        case.call_and_validate(base_url=running.base_url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

    answers_as_documented()


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_every_field_takes_a_nul_and_a_huge_number(
    operation: schemathesis.APIOperation, api: tuple[Running, list[str]]
) -> None:
    running, (token, huge_exp) = api

    @given(case=operation.as_strategy(GenerationMode.POSITIVE))
    @settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def each_field_spoilt(case: schemathesis.Case) -> None:
        case.derive().call_and_validate(
            base_url=running.base_url, headers={"Authorization": f"Bearer {huge_exp}"}, checks=CHECKS
        )
        for variant in spoilt(case):
            variant.call_and_validate(
                base_url=running.base_url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
            )

    each_field_spoilt()


@pytest.mark.parametrize("path", ["/", "/healthz", "/schema", "/v1/reflections", "/storage/v1/object/voice-samples/x"])
def test_an_invalid_host_is_a_400_and_no_traceback(path: str, api: tuple[Running, list[str]]) -> None:
    running, (token, _) = api
    logged = running.log.stat().st_size

    response = httpx.get(
        f"{running.base_url}{path}", headers={"Host": "127.0.0.1:80 evil", "Authorization": f"Bearer {token}"}
    )

    assert (response.status_code, response.json()["code"]) == (400, "invalid_host"), response.text
    with running.log.open("rb") as log:
        log.seek(logged)
        assert b"Traceback" not in log.read()
