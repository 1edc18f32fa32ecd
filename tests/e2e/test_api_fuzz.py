"""Schemathesis against a real `voicegate up`: requests generated from the OpenAPI document alone, valid
and invalid, with a dev user's token. Whatever it sends, nothing answers 5xx, every status is one the
document lists, and every body matches its documented schema and content type."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
from backend.settings import settings_from_env, with_auth
from tests.conftest import server_dir
from tests.e2e.up import Running, dev_token, is_ready, start_up, wait_for

pytestmark = pytest.mark.timeout(300)
#: Examples per operation and mode: enough to reach every field and kinds of wrong value, bounded for CI.
EXAMPLES = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _document() -> schemathesis.BaseSchema:
    """The document `voicegate up` serves, built from the handlers alone (no database is contacted), so
    operations are known when the tests are collected; the test checks it equals the served one."""
    settings_ = with_auth(
        settings_from_env({"VOICEGATE_DATA_DIR": str(Path("/nonexistent"))}), {"SUPABASE_JWT_SECRET": "d" * 40}
    )
    document = create_app(settings_, "postgresql://nobody@127.0.0.1:1/none").openapi_schema.to_schema()
    return schemathesis.openapi.from_dict(document)


SCHEMA = _document()
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[Running, str]]:
    """One `voicegate up` for every generated request, and a dev user's token."""
    with server_dir("fuzz") as root:
        up = start_up(root)
        try:
            wait_for(lambda: is_ready(up.base_url), 90, "/readyz 200", up)
            yield up, dev_token(up, "fuzz@example.test")
        finally:
            if up.process.poll() is None:
                up.process.kill()
                up.process.wait()
            up.pg.stop(mode="immediate")


def test_the_served_document_is_the_one_fuzzed(api: tuple[Running, str]) -> None:
    running, _ = api
    served = schemathesis.openapi.from_url(f"{running.base_url}/schema/openapi.json")
    assert sorted(op.ok().label for op in served.get_all_operations()) == sorted(op.label for op in OPERATIONS)


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_generated_requests_get_documented_answers(
    operation: schemathesis.APIOperation, api: tuple[Running, str]
) -> None:
    running, token = api
    headers = {"Authorization": f"Bearer {token}"}
    modes = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=modes)
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def answers_as_documented(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=running.base_url, headers=headers, checks=CHECKS)

    answers_as_documented()
