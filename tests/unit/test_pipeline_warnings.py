"""psycopg's warning that a pipeline whose block raised could not be ended says again what the block raised: it is
dropped when the pipeline was aborted or its connection lost (a database outage is logged once, as it starts, by
backend.outages), and kept for any other error. The record is written as psycopg writes it, on its own logger."""

from __future__ import annotations

import logging

import psycopg
import pytest

import backend.db.connection  # noqa: F401  (installs the filter on psycopg's logger)


@pytest.mark.parametrize(
    ("error", "kept"),
    [
        (psycopg.OperationalError("the connection is lost"), False),
        (psycopg.errors.PipelineAborted("pipeline aborted"), False),
        (psycopg.ProgrammingError("cannot exit pipeline mode with uncollected results"), True),
    ],
)
def test_a_pipeline_that_failed_with_its_block_is_not_logged_twice(
    error: Exception, kept: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="psycopg")
    logging.getLogger("psycopg").warning("error ignored terminating %r: %s", "<psycopg.AsyncPipeline [BAD]>", error)
    assert [record.getMessage() for record in caplog.records] == (
        [f"error ignored terminating '<psycopg.AsyncPipeline [BAD]>': {error}"] if kept else []
    )
