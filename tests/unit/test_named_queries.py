"""The named-query files: parsed once, every name the code uses is present."""

from __future__ import annotations

import pytest

from backend.db.queries import QueryFileError, parse_queries
from backend.domain import reflections, samples, synthesis, voices
from backend.lifecycle import samples as sample_checks
from backend.lifecycle import synthesis as synthesis_jobs
from backend.web import routes as web_routes


def test_blocks_are_split_on_their_headers() -> None:
    text = "-- leading comment\n-- name: first\nselect 1;\n\n-- name: second_one\nselect %(x)s;\n"
    assert parse_queries(text) == {"first": "select 1;", "second_one": "select %(x)s;"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("select 1;\n-- name: q\nselect 2;", "before the first"),
        ("-- name: q\n\n-- name: r\nselect 1;", "'q' is empty"),
        ("-- name: q\nselect 1;\n-- name: q\nselect 2;", "defined twice"),
    ],
)
def test_malformed_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(QueryFileError, match=message):
        parse_queries(text)


@pytest.mark.parametrize(
    ("queries", "names"),
    [
        (
            reflections.Q,
            {
                "create_reflection",
                "list_reflections",
                "get_reflection",
                "readiness",
                "list_attempts",
                "get_attempt",
                "active_attempt",
                "transition_attempt",
                "create_session",
                "retry_attempt",
            },
        ),
        (voices.Q, {"list_voices", "get_voice", "soft_delete_voice"}),
        (samples.Q, {"sample_status", "list_samples"}),
        (web_routes.Q, {"local_user"}),
        (
            synthesis.Q,
            {
                "visible_sample",
                "lock_sample",
                "visible_voice",
                "lock_voice",
                "open_attempt",
                "insert_sample_voice",
                "link_sample_voice",
                "insert_sample_attempt",
                "insert_job",
                "job",
            },
        ),
        (
            sample_checks.Q,
            {
                "claim_sample",
                "sample_state",
                "record_processed_sample",
                "record_rejected_sample",
                "fail_unchecked_sample",
            },
        ),
        (synthesis_jobs.Q, {"load_job", "start_job", "retry_job", "fail_job", "finish_job"}),
    ],
)
def test_every_query_the_services_use_exists(queries: dict[str, str], names: set[str]) -> None:
    assert set(queries) == names
