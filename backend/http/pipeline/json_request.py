"""The app's Request: its JSON body is checked (`backend.json_body.check_json`), then decoded straight into the
type the route takes.

Every route that takes a `JSONBody[...]` reads it through `Request.json`, so this is the one place a body is
decoded: one that is not UTF-8, nests deeper than `MAX_DEPTH`, or is not JSON at all is a 400 `invalid_json`
whose `detail` names which, and one that is JSON of the wrong shape a 400 `validation_failed` naming the field.

Decoding into the route's own type (a msgspec Struct) builds only what the route keeps: the first unknown or
ill-typed member stops the decoder, where decoding into dicts first would build every member of the body (a
megabyte of `"k1": 0, "k2": 0, ...` is a dict of 100,000 keys, and memory the allocator keeps) before
the route's type refuses it. Litestar then takes the decoded value as it is.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Empty

from backend.errors import InvalidJson, ValidationFailed
from backend.http.pipeline.problem import validation_message
from backend.json_body import check_json


def _body_type(handler: BaseRouteHandler) -> Any:
    """The type a route handler's `data` is (None when it takes none)."""
    data = handler.parsed_fn_signature.parameters.get("data")
    return None if data is None else data.annotation


class JsonCheckedRequest(Request[Any, Any, Any]):
    """A Request whose `json()` refuses, as InvalidJson, a body that would fail or crash the decoder, and decodes
    the rest into the route's own body type."""

    __slots__ = ()

    async def json(self) -> Any:
        """The body decoded as the route's `data` (or as plain JSON where it takes none), checked first; once per
        request."""
        if self._json is Empty:
            body = await self.body()
            check_json(body)
            self._json = _decode(body or b"null", _body_type(self.route_handler))
        return self._json


def _decode(body: bytes, into: Any) -> Any:
    """`body` as `into` (as plain JSON when None); InvalidJson when it is not JSON, else ValidationFailed when it is
    not that shape."""
    try:
        try:
            return msgspec.json.decode(body) if into is None else msgspec.json.decode(body, type=into)
        except msgspec.ValidationError as exc:
            # The decoder stops at the first member it cannot take; malformed JSON after it is still the first
            # thing to say. Read as Raw, the whole body is checked without building anything.
            msgspec.json.decode(body, type=msgspec.Raw)
            raise ValidationFailed(validation_message(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None
