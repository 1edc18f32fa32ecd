"""What a request must show before its route reads a byte of its body: the caller's access token (401), an account
that still exists (401), for a route that reads JSON a JSON `Content-Type` (415), on every route a `Content-Length`
within the route's limit (413: the JSON limit, or an upload route's own, `BODY_LIMIT`), and a free place among the
caller's requests in flight (429: VOICEGATE_USER_CONCURRENCY, counted from here, before the body has arrived, so a
slow body holds its place; answered after a pause, so that a client keeping more in flight than it may cannot take
its refusals as fast as the process can make them). A synthesis job whose refusal this process remembers (the jobs
bound, an exhausted quota: `backend.usage.job_admission`) is refused here too, before its body is read or a place
taken. The request's units of work then take their database connections as the caller's, within the caller's share
of them (`backend.db.shares`).

A token outlives its user by up to its expiry. An account the database has said is gone is refused with the token
(`TokenVerifier.account_gone`), before any database work. Otherwise a route that works in the database checks the
account in its first statement, at no cost of its own; an upload route (which would read its upload first), and one
whose first work is a call to Storage (`ACCOUNT_FIRST`), has it checked here before its body is read; and any route
about to refuse what it read (400, 413, 415, 422) has it checked before that answer leaves, so that a removed user is
answered 401 everywhere, never a word about their body.

Litestar decodes a handler's `data` before it resolves the handler's dependencies, the caller among them, so
without this check an anonymous client could make the server read and check a body of any size the route took
before refusing its token. Here the token is verified first and the verified caller kept in the request's
scope, where `backend.http.deps.provide_claims` takes it; a body sent without a length (chunked) is cut off at
the limit as it arrives.
"""

from __future__ import annotations

import asyncio
from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from backend.auth.accounts import require_account
from backend.auth.verify import TokenVerifier, UserClaims, bearer_token
from backend.body_limit import BODY_LIMIT
from backend.db.shares import OWNER
from backend.db.units import Database
from backend.errors import AccountGone, BodyTooLarge, ConcurrencyLimited, JsonRequired, PayloadTooLarge, VoicegateError
from backend.http.idempotency import KEY_HEADER
from backend.http.pipeline.concurrency import Slot, UserConcurrency
from backend.http.pipeline.problem import send_problem
from backend.usage.job_admission import PAUSE_S as REFUSAL_PAUSE_S
from backend.usage.job_admission import QUEUES_JOBS, JobAdmission

#: Where in the scope's state the verified caller is kept for the request.
CALLER: Final = "voicegate.caller"
#: Where in the scope's state the caller's place among their requests in flight is kept.
SLOT: Final = "voicegate.slot"
#: `opt` of a route whose first work is not in the database as the caller (it asks Storage first): the entry check reads
#: the caller's account before it runs, so that a removed user is answered 401, not whatever Storage makes of them.
ACCOUNT_FIRST: Final = "account_first"
#: The answers that refuse what a request sent: a removed user is answered 401 instead.
_REFUSALS: Final = frozenset({400, 413, 415, 422})


def caller_of(scope: Scope) -> UserClaims:
    """The caller the entry check verified for this request (a route that takes `claims` always passes it)."""
    claims: UserClaims = scope["state"][CALLER]
    return claims


def release_slot(scope: Scope) -> None:
    """Give back the caller's place among their requests in flight once the route has answered (a stream's
    body plays on without it: VOICEGATE_USER_STREAMS counts those); the entry check gives it back in any case."""
    slot: Slot | None = scope["state"].get(SLOT)
    if slot is not None:
        slot.release()


def is_json(content_type: str) -> bool:
    """Whether `content_type` (a header's value) names JSON: `application/json`, or `application/<x>+json`."""
    essence = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = essence.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


class EntryCheckMiddleware:
    """Checks the token, then the JSON body's type and announced size, before the route runs.

    A plain ASGI middleware factory (Litestar calls it with each route's app), as `HostCheckMiddleware` is; what
    a route asks for is read from its handler's signature (two dictionary lookups)."""

    def __init__(self, json_limit: int) -> None:
        self.json_limit = json_limit

    def __call__(self, app: ASGIApp) -> ASGIApp:
        """The route's `app`, behind the entry check."""

        async def checked(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            handler = scope["route_handler"]
            parameters = handler.parsed_fn_signature.parameters
            caller, json_body = "claims" in parameters, "data" in parameters
            upload_limit: int | None = handler.opt.get(BODY_LIMIT)
            headers = _headers(scope)
            if not caller:
                if json_body and self._check_body(headers):
                    receive = self._counted(receive)
                self._check_length(headers.get("content-length"), upload_limit, json_body=json_body)
                await app(scope, receive, send)
                return
            account = _Account(scope)
            claims = account.claims = await account.verifier.verify_user(bearer_token(headers.get("authorization")))
            # The request's units of work take their connections as the caller's, within the caller's share.
            owner = OWNER.set(claims.sub)
            try:
                if handler.opt.get(QUEUES_JOBS) and KEY_HEADER.lower() not in headers:
                    # A retry with an Idempotency-Key may replay a job accepted before: the route decides it.
                    admission: JobAdmission = scope["app"].state.job_admission
                    await admission.check(claims.sub, None)
                if upload_limit is not None or handler.opt.get(ACCOUNT_FIRST):
                    await account.require()
                try:
                    if json_body and self._check_body(headers):
                        receive = self._counted(receive)
                    self._check_length(headers.get("content-length"), upload_limit, json_body=json_body)
                except VoicegateError:
                    await account.require()
                    raise
                slots: UserConcurrency = scope["app"].state.user_slots
                try:
                    slot = slots.take(claims.sub)
                except ConcurrencyLimited:
                    # Answered after a pause, as a remembered refusal is: a client that keeps more requests in
                    # flight than it may would otherwise take its answers as fast as the process can refuse them.
                    await asyncio.sleep(REFUSAL_PAUSE_S)
                    raise
                state = scope.setdefault("state", {})
                state[CALLER], state[SLOT] = claims, slot
                try:
                    await app(scope, receive, account.sending(send))
                finally:
                    slot.release()
            finally:
                OWNER.reset(owner)

        return checked

    def _check_length(self, length: str | None, upload_limit: int | None, *, json_body: bool) -> None:
        """Refuse, before anything else, a body announced larger than the route ever takes: an upload route's
        `BODY_LIMIT`, the JSON limit on every other route (one that reads no body takes none that large either)."""
        if length is None or not length.isdigit():
            return  # no length (chunked: counted as it arrives), or one the server's parser refused already
        if upload_limit is not None:
            if int(length) > upload_limit:
                raise PayloadTooLarge(f"The body is {length} bytes; this route takes at most {upload_limit} bytes.")
        elif int(length) > self.json_limit:
            what = "JSON of " if json_body else "a body of "
            raise BodyTooLarge(f"The body is {length} bytes; this route takes {what}at most {self.json_limit} bytes.")

    def _check_body(self, headers: dict[str, str]) -> bool:
        """Refuse a body that is not labelled JSON; whether there is a body to read."""
        length = headers.get("content-length")
        has_body = length != "0" if length is not None else "transfer-encoding" in headers
        if not has_body:
            return False  # the route says what it misses
        if not is_json(headers.get("content-type", "")):
            raise JsonRequired(
                f"The body must be JSON: send it with Content-Type: application/json"
                f" (got {headers.get('content-type', 'none')[:100]!r})."
            )
        return True

    def _counted(self, receive: Receive) -> Receive:
        """`receive`, refusing the body the moment more of it than the limit has arrived (one sent without a
        Content-Length, or longer than it said)."""
        limit = self.json_limit
        arrived = 0

        async def counted() -> ReceiveMessage:
            nonlocal arrived
            message = await receive()
            if message["type"] == "http.request":
                arrived += len(message.get("body", b""))
                if arrived > limit:
                    raise BodyTooLarge(f"The body is larger than this route takes ({limit} bytes of JSON at most).")
            return message

        return counted


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (ASGI names are lower case already), the first of each kept."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


class _Account:
    """The caller's account as the entry check knows it for one request: checked in the database at most once."""

    __slots__ = ("checked", "claims", "db", "replaced", "scope", "verifier")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        state = scope["app"].state
        self.verifier: TokenVerifier = state.verifier
        self.db: Database = state.db
        self.claims: UserClaims
        self.checked = False
        #: Whether the route's own answer was replaced by a 401 (what it still sends is dropped).
        self.replaced = False

    async def require(self) -> None:
        """AccountGone when the caller's account no longer exists."""
        if not self.checked:
            self.checked = True
            await require_account(self.db, self.verifier, self.claims)

    def sending(self, send: Send) -> Send:
        """`send`, answering 401 instead of a refusal of the body when the caller's account is gone (a database
        that cannot say lets the refusal through)."""

        async def checked(message: Message) -> None:
            if self.replaced:
                return
            if message["type"] == "http.response.start" and message["status"] in _REFUSALS and not self.checked:
                try:
                    await self.require()
                except AccountGone as exc:
                    self.replaced = True
                    await send_problem(exc, self.scope, send)
                    return
                except VoicegateError:
                    pass
            await send(message)

        return checked
