"""The route option an upload route (one without Litestar's JSON limit) sets to the most bytes its body may
announce: `opt={BODY_LIMIT: n}`. The entry check (`backend.http.pipeline.entry`) refuses a larger `Content-Length`
before any of the body is read; the routes of voicegate and of the Storage stand-in both set it, so it lives
below both."""

from __future__ import annotations

from typing import Final

BODY_LIMIT: Final = "body_limit"
