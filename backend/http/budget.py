"""Every HTTP request's one budget for waiting on a database that does not answer (see
`backend.db.deadline.request_budget`): its units of database work, and those of the Storage stand-in it
reaches in-process, answer 503 within it together rather than each after a deadline of its own."""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from backend.db.deadline import request_budget


class DatabaseBudgetMiddleware(ASGIMiddleware):
    """Runs each request under a database budget of `seconds` (one it was reached from keeps its own)."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Run the request within the budget."""
        with request_budget(self.seconds):
            await next_app(scope, receive, send)
