"""Every HTTP request's admission to the database and its one budget for waiting on it.

A request that needs the database is first admitted by its kind of work's `Admission` (the API's, or the
Storage stand-in's under `/storage/v1`): while the database is out of reach it is refused at once, before
its body is read (`backend.db.admission`). Admitted, its units of database work, and those of the Storage
stand-in it reaches in-process (which keep the request's admission and budget), answer 503 within one budget
together rather than each after a deadline of its own (`backend.db.deadline.request_budget`). Routes that
never touch the database (the page, its files, the docs, the probes of the process) say so with
`opt={DATABASE_FREE: True}` and are served whatever the database does."""

from __future__ import annotations

from typing import Protocol

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from backend.db.admission import Admission
from backend.db.deadline import request_budget, serving_request

#: The route option of handlers that never use the database.
DATABASE_FREE = "database_free"


class Admissions(Protocol):
    """The admissions of the running process, by a request's path (`app.state.admissions`, which the app's
    lifespan sets before any request is served: `backend.compose.api.Admissions`)."""

    def of(self, path: str) -> Admission:
        """The admission of a request to `path`."""
        ...


class DatabaseAdmissionMiddleware(ASGIMiddleware):
    """Admits each request that needs the database (by the app's `Admissions` of its path), and runs it within a
    database budget of `seconds`; a request reached in-process from another keeps that one's admission and
    budget."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Admit the request (or refuse it with DatabaseUnavailable), then run it within the budget."""
        if serving_request() or scope["route_handler"].opt.get(DATABASE_FREE):
            with request_budget(self.seconds):
                await next_app(scope, receive, send)
            return
        admissions: Admissions = scope["app"].state.admissions
        async with admissions.of(scope["path"]).admitted():
            with request_budget(self.seconds):
                await next_app(scope, receive, send)
