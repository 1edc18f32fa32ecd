"""The app's Request: its JSON body is checked (`backend.json_body.check_json`) before Litestar decodes it.

Every route that takes a `JSONBody[...]` (or any `data`) reads it through `Request.json`, so this is the one
place a body is decoded: one that is not UTF-8, nests deeper than `MAX_DEPTH`, or is not JSON at all is a 400
`invalid_json` whose `detail` names which, before the route's dependencies (auth included) or any query run.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection.base import empty_receive, empty_send
from litestar.exceptions import SerializationException
from litestar.types import Receive, Scope, Send

from backend.errors import InvalidJson
from backend.json_body import check_json


class JsonCheckedRequest(Request[Any, Any, Any]):
    """A Request whose `json()` refuses, as InvalidJson, a body that would fail or crash the decoder."""

    __slots__ = ("_json_checked",)

    def __init__(self, scope: Scope, receive: Receive = empty_receive, send: Send = empty_send) -> None:
        super().__init__(scope, receive, send)
        self._json_checked = False

    async def json(self) -> Any:
        """The body decoded as JSON, checked first (once per request)."""
        if not self._json_checked:
            check_json(await self.body())
            self._json_checked = True
        try:
            return await super().json()
        except SerializationException as exc:
            raise InvalidJson(f"the body is not valid JSON: {exc.detail}") from None
