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
from litestar.types import ASGIApp, Receive, Scope, Send

from backend.db.admission import Admission
from backend.db.deadline import request_budget, serving_request

#: The route option of handlers that never use the database.
DATABASE_FREE = "database_free"


class Admissions(Protocol):
    """The admissions of the running process, by a request's path (`app.state.admissions`, which the app's
    lifespan sets before any request is served: `backend.compose.api.PathAdmissions`)."""

    def of(self, path: str) -> Admission:
        """The admission of a request to `path`."""
        ...


class DatabaseAdmissionMiddleware:
    """Admits each request that needs the database (by the app's `Admissions` of its path), and runs it within a
    database budget of `seconds`; a request reached in-process from another keeps that one's admission and
    budget.

    A plain ASGI middleware factory (Litestar calls it with each route's app), as `HostCheckMiddleware` is."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, app: ASGIApp) -> ASGIApp:
        """The route's `app`, behind the admission."""
        seconds = self.seconds

        async def admitted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or scope["route_handler"].opt.get(DATABASE_FREE):
                # Nothing of the database to wait for, nor to hand on to a request it reaches in-process.
                await app(scope, receive, send)
            elif serving_request():
                with request_budget(seconds):
                    await app(scope, receive, send)
            else:
                admissions: Admissions = scope["app"].state.admissions
                async with admissions.of(scope["path"]).admitted():
                    with request_budget(seconds):
                        await app(scope, receive, send)

        return admitted
