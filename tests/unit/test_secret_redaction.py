"""Credentials in URLs never reach a log: the access log's request lines are redacted."""

from __future__ import annotations

import logging

import pytest

from backend.secret import RedactUrlCredentials


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/storage/v1/object/sign/b/a.wav?token=eyJ.x.y", "/storage/v1/object/sign/b/a.wav?token=[redacted]"),
        ("/x?download=1&token=abc&keep=2", "/x?download=1&token=[redacted]&keep=2"),
        ("/x?apikey=sb_secret_1&Access_Token=t", "/x?apikey=[redacted]&Access_Token=[redacted]"),
        ("/v1/reflections?limit=20", "/v1/reflections?limit=20"),
        ("/tokens?notatoken=1", "/tokens?notatoken=1"),
    ],
)
def test_an_access_log_line_keeps_its_path_without_the_credential(path: str, logged: str) -> None:
    # As uvicorn's access logger records a request: the path is one of the arguments.
    args = ("127.0.0.1:5000", "GET", path, "1.1", 200)
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None)
    assert RedactUrlCredentials().filter(record)
    assert record.getMessage() == f'127.0.0.1:5000 - "GET {logged} HTTP/1.1" 200'
