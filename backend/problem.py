"""RFC 9457 problem+json responses: the single place where exceptions become HTTP errors."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException

from backend.errors import DatabaseUnavailable, ServiceUnavailable, StorageUnavailable, VoicegateError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# Their outages are logged where they are detected, once as they start and once as they end
# (backend.outages), not once per request they fail.
_OUTAGES = (DatabaseUnavailable, StorageUnavailable)


class Problem(msgspec.Struct, omit_defaults=True):
    """The body of every error response."""

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    extensions: dict[str, object] = msgspec.field(default_factory=dict)
    """Extension members, rendered beside the standard ones."""

    def encode(self) -> bytes:
        """The JSON body, extension members at the top level as RFC 9457 places them."""
        standard = {f: getattr(self, f) for f in self.__struct_fields__ if f != "extensions"}
        return msgspec.json.encode({k: v for k, v in standard.items() if v is not None} | self.extensions)


def problem_for(exc: Exception, path: str) -> tuple[Problem, dict[str, str]]:
    """The problem body and extra headers for `exc`; unknown exceptions become an opaque 500."""
    headers: dict[str, str] = {}
    extensions: dict[str, object] = {}
    if isinstance(exc, VoicegateError):
        status, code, detail, extensions = exc.status, exc.code, exc.detail, exc.extensions()
        if isinstance(exc, ServiceUnavailable):
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, ValidationException):
        status, code, detail = 400, "validation_failed", _validation_detail(exc)
    elif isinstance(exc, NotFoundException):
        status, code, detail = 404, "not_found", "No such route or resource."
    elif isinstance(exc, HTTPException):
        status, code, detail = exc.status_code, _slug(exc.status_code), exc.detail
        headers.update(exc.headers or {})
    else:
        status, code, detail = 500, "internal_error", "An unexpected error occurred."
    title = _TITLES.get(status, "Error")
    return Problem(
        type=f"https://voicegate.dev/problems/{code}",
        title=title,
        status=status,
        code=code,
        detail=detail,
        instance=path,
        extensions=extensions,
    ), headers


def problem_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Litestar exception handler: render any exception as problem+json."""
    body, headers = problem_for(exc, request.url.path)
    if body.status >= 500 and not isinstance(exc, _OUTAGES):
        log.error("%s %s -> %s", request.method, request.url.path[:200], body.code, exc_info=body.status == 500)
    return Response(body.encode(), status_code=body.status, media_type=PROBLEM_JSON, headers=headers)


def _validation_detail(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    messages = [str(item.get("message", "")) for item in extra if isinstance(item, dict)]
    return "; ".join(m for m in messages if m) or str(exc.detail)


def _slug(status: int) -> str:
    return _TITLES.get(status, "error").lower().replace(" ", "_")


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
