"""The process's log: one line per record on standard error, as text (the default) or as JSON
(VOICEGATE_LOG_FORMAT=json), each record of an HTTP request carrying that request's id.

A request's id is the `X-Request-Id` its client sent, when it is a plain token of at most 128 characters (a proxy
or a load balancer in front usually sets one), or one made here; the answer carries it back in `X-Request-Id`, and
every record written while the request is served (its access line, a provider's refusal, a traceback) names it,
so a user's report of a failed call leads to its lines.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final, Literal

#: The id of the request being served in this context (None outside one: the worker, start-up).
REQUEST_ID: Final[ContextVar[str | None]] = ContextVar("voicegate_request_id", default=None)
#: The header a request's id comes in and goes back out in.
REQUEST_ID_HEADER: Final = b"x-request-id"

#: A client's id is kept only as a plain token: it is written into log lines and answer headers as it is.
_CLIENT_ID = re.compile(rb"[A-Za-z0-9._:@+=/-]{1,128}")
#: The fields a record's `extra=` may add to its JSON line: the access line's parts. Any other (a library's, or one
#: added later without a thought for what it may hold, such as a header or a URL with a token) stays off the line.
LINE_FIELDS: Final = frozenset({"client", "method", "path", "status", "duration_ms"})
_TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The id of a request with these headers: its client's `X-Request-Id` when that is a plain token, else a
    new one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER and _CLIENT_ID.fullmatch(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line: `time` (UTC, ISO 8601), `level`, `logger`, `message`, the
    `request_id` of the request it was written for, the fields of `LINE_FIELDS` passed in `extra=`, and `exception` (the
    traceback, as text) when it carries one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record's line (without its newline)."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        line.update((key, value) for key, value in vars(record).items() if key in LINE_FIELDS)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter(log_format: Literal["text", "json"]) -> logging.Formatter:
    """The formatter of VOICEGATE_LOG_FORMAT."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(_TEXT_FORMAT)
