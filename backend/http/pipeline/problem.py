"""RFC 9457 problem+json responses: the single place where exceptions become HTTP errors."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.types import Scope, Send
from msgspec import UNSET, UnsetType

from backend.audio.report import QualityReport
from backend.errors import (
    InvalidHost,
    ServiceUnavailable,
    TooManyRequests,
    VoicegateError,
)
from backend.fields import PATTERN_WORDS, valid_host

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


#: An audio refusal's figure, in seconds or as a share of the samples.
Figure = Annotated[float, msgspec.Meta(description="An audio refusal's measured value or limit (s, or a share).")]


class ProblemDetails(msgspec.Struct, omit_defaults=True, rename="camel"):
    """An error (RFC 9457): a stable `code` to branch on, and `detail` in words. Some errors add members of
    their own, each declared here (absent otherwise), so a generated client types them and the document
    allows no others: `blockingReasons` (`launch_blocked`), `provider` and `languages`
    (`language_not_supported`), and an audio refusal's `reason`, figures and `quality` report."""

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    blocking_reasons: (
        Annotated[list[str], msgspec.Meta(description="Every reason the voice may not launch yet.")] | UnsetType
    ) = UNSET
    provider: Annotated[str, msgspec.Meta(description="The voice provider that cannot speak it.")] | UnsetType = UNSET
    languages: Annotated[list[str], msgspec.Meta(description="The languages that provider speaks.")] | UnsetType = UNSET
    reason: Annotated[str, msgspec.Meta(description="Why the audio could not be decoded.")] | UnsetType = UNSET
    quality: QualityReport | UnsetType = UNSET
    duration_s: Figure | UnsetType = UNSET
    decoded_s: Figure | UnsetType = UNSET
    held_s: Figure | UnsetType = UNSET
    max_for_size_s: Figure | UnsetType = UNSET
    max_duration_s: Figure | UnsetType = UNSET
    min_duration_s: Figure | UnsetType = UNSET
    clipping_ratio: Figure | UnsetType = UNSET
    max_clipping_ratio: Figure | UnsetType = UNSET


class Problem(ProblemDetails):
    """The body of every error response: what the OpenAPI document shows (`ProblemDetails`), and the
    error's own members."""

    extensions: dict[str, object] = msgspec.field(default_factory=dict)
    """Extension members, rendered beside the standard ones."""

    def encode(self) -> bytes:
        """The JSON body, extension members at the top level as RFC 9457 places them (the members left at
        their defaults, None or absent, are left out)."""
        standard = msgspec.to_builtins(self)
        standard.pop("extensions", None)
        return msgspec.json.encode(standard | self.extensions)


def problem_for(exc: Exception, path: str) -> tuple[Problem, dict[str, str]]:
    """The problem body and extra headers for `exc`; unknown exceptions become an opaque 500."""
    headers: dict[str, str] = {}
    extensions: dict[str, object] = {}
    if isinstance(exc, VoicegateError):
        status, code, detail, extensions = exc.status, exc.code, exc.detail, exc.extensions()
        if isinstance(exc, ServiceUnavailable | TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
            headers.update(exc.headers)
    elif isinstance(exc, ValidationException):
        status, code, detail = 400, "validation_failed", _validation_detail(exc)
    elif isinstance(exc, NotFoundException):
        status, code, detail = 404, "not_found", "No such route or resource."
    elif isinstance(exc, HTTPException):
        status, code, detail = exc.status_code, _slug(exc.status_code), exc.detail
        headers.update(exc.headers or {})
    else:
        status, code, detail = 500, "internal_error", "An unexpected error occurred."
    return Problem(
        type=f"https://voicegate.dev/problems/{code}",
        title=_TITLES.get(status, "Error"),
        status=status,
        code=code,
        detail=detail,
        instance=path,
        extensions=extensions,
    ), headers


def problem_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Litestar exception handler: render any exception as problem+json.

    A bad Host header is the answer whatever else went wrong: Litestar refuses some before routing, and a
    request to no route never meets `HostCheckMiddleware`. The path is the scope's, never `request.url`'s,
    which would be built from that very header (and fail again, as a server error).
    """
    path = request.scope["path"]
    if not valid_host(request.scope["headers"]):
        exc = InvalidHost()
    body, headers = problem_for(exc, path)
    # A 503 is a refusal (a backlog, a provider or an outage, which is logged where it is detected, once as it
    # starts and once as it ends: backend.outages), in the access log with every other answer, never an error.
    if body.status >= 500 and not isinstance(exc, ServiceUnavailable):
        log.error("%s %s -> %s", request.method, path[:200], body.code, exc_info=body.status == 500)
    return Response(body.encode(), status_code=body.status, media_type=PROBLEM_JSON, headers=headers)


async def send_problem(exc: Exception, scope: Scope, send: Send) -> None:
    """Answer the request of `scope` with `exc`'s problem+json, outside any route (from a middleware)."""
    body, headers = problem_for(exc, scope["path"])
    encoded = body.encode()
    fields = {"content-type": PROBLEM_JSON, "content-length": str(len(encoded)), **headers}
    await send(
        {
            "type": "http.response.start",
            "status": body.status,
            "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in fields.items()],
        }
    )
    await send({"type": "http.response.body", "body": encoded, "more_body": False})


#: What Litestar says of a route's JSON body when none was sent: the key it found missing, as Python writes it.
_NO_BODY = {"message": "'data'", "key": "data", "source": "body"}
EMPTY_BODY = "the body is empty: this route takes a JSON object (Content-Type: application/json)"


def _validation_detail(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    messages = [
        EMPTY_BODY if item == _NO_BODY else validation_message(str(item.get("message", "")), item.get("key"))
        for item in extra
        if isinstance(item, dict) and item.get("message")
    ]
    return "; ".join(messages) or str(exc.detail)


_AT = re.compile(r" - at `\$\.(?P<path>[^`]+)`$")
_FIELD = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<field>[^`]+)`$")
_TYPE_WORDS = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}
_WORDING: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Expected `str` of length <= (\d+)$"), "at most {0} characters"),
    (re.compile(r"^Expected `str` of length >= 1$"), "must not be empty"),
    (re.compile(r"^Expected `str` of length >= (\d+)$"), "at least {0} characters"),
    (re.compile(r"^Expected `(?:int|float)` <= (\S+)$"), "at most {0}"),
    (re.compile(r"^Expected `(?:int|float)` >= (\S+)$"), "at least {0}"),
    *((re.compile(re.escape(f"Expected `str` matching regex {p!r}")), w) for p, w in PATTERN_WORDS.items()),
    (re.compile(r"^Expected `str` matching regex .*$"), "not in the expected format"),
    (re.compile(r"^Invalid UUID$"), "must be a UUID"),
    (re.compile(r"^Invalid enum value (.*)$"), "{0} is not one of the allowed values"),
    (re.compile(r"^Object missing required field `[^`]+`$"), "required"),
    (re.compile(r"^Object contains unknown field `[^`]+`$"), "unknown field"),
]


def validation_message(raw: str, key: str | None = None) -> str:
    """msgspec's validation message in words, led by the field it is about: `text: at most 5000
    characters`, not "Expected `str` of length <= 5000". `key` is Litestar's (`data.text`), else the
    field comes from the message's own `- at `$.text`` or `field `text``."""
    message, field = raw, key
    if (at := _AT.search(message)) is not None:
        message, field = message[: at.start()], field or at["path"]
    if (named := _FIELD.match(message)) is not None:
        field = ".".join(part for part in (field, named["field"]) if part)
    for pattern, words in _WORDING:
        if (found := pattern.match(message)) is not None:
            message = words.format(*found.groups())
            break
    else:
        if (typed := re.match(r"^Expected `(\w+)`, got `(\w+)`$", message)) is not None:
            message = f"must be {_TYPE_WORDS.get(typed[1], typed[1])}"
    field = field.removeprefix("data.").removeprefix("data") if field else field
    return f"{field}: {message}" if field else message


def _slug(status: int) -> str:
    return _TITLES.get(status, "error").lower().replace(" ", "_")


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    499: "Client Closed Request",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
