"""`voicegate.usage_events` and `voicegate.user_usage`: what each user spends at the providers, and the quota it is
held to. The statements; `backend.usage.charge` is the one path every provider call that sends text goes through.

Every send of a call's text is reserved before it is made: the call's first (`reserve`) writes its ledger row with
its characters, each resend (`reserve_resend`) adds them again, and the user's counter for the current fixed window
(VOICEGATE_USER_USAGE_WINDOW seconds since the epoch, so it resets at the same instant for every process) is raised,
under the counter's row lock, in a transaction that commits before the send. So a send the quota refuses is never
made, and a worker that dies after a send leaves its characters counted, never lost; a send reserved and never
made is given back (`release`). The row is keyed by its work and its call, so a re-delivered message that does not
call again adds nothing. The transaction that records the call's result fills in its audio seconds
(`record_seconds`).
"""

from __future__ import annotations

import enum
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, LiteralString

import msgspec
from psycopg.errors import LockNotAvailable

from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_one
from backend.db.queries import load_queries
from backend.db.units import commit_with
from backend.domain.limits import SpendQuota
from backend.errors import JobsLimited, QuotaExceeded, TooManyRequests

_Q = load_queries(Path(__file__).with_suffix(".sql"))

#: The name of the quota's policy in the `RateLimit` fields.
POLICY = "characters"


class UsageKind(enum.StrEnum):
    """What a ledger row's call was for: `voicegate.usage_events.kind`, exactly its CHECK constraint's values."""

    JOB = "job"
    STREAM = "stream"
    PREVIEW = "preview"
    PROBE = "probe"
    ENROLMENT = "enrolment"


#: The settings' defaults, for what is built without them (a test's service).
DEFAULT_SPEND: Final = SpendQuota()


class Allowance(msgspec.Struct, frozen=True, kw_only=True):
    """Where a user stands in the current window."""

    limit: int
    window_seconds: int
    used: int
    window_start: datetime
    #: Seconds until the window resets (at least 1).
    reset_in: int

    @property
    def remaining(self) -> int:
        """Characters left this window."""
        return max(0, self.limit - self.used)

    def headers(self) -> dict[str, str]:
        """The IETF draft's `RateLimit-Policy` and `RateLimit` fields for this allowance."""
        return {
            "RateLimit-Policy": f'"{POLICY}";q={self.limit};w={self.window_seconds}',
            "RateLimit": f'"{POLICY}";r={self.remaining};t={self.reset_in}',
        }

    def exceeded(self, characters: int) -> QuotaExceeded:
        """The refusal of `characters` more than this allowance leaves, its times said as a person says them (the
        exact seconds are in `Retry-After`)."""
        return QuotaExceeded(
            f"{characters} characters would pass your quota of {self.limit} per {duration_words(self.window_seconds)}"
            f" ({self.remaining} left); it resets in {duration_words(self.reset_in)}.",
            retry_after=self.reset_in,
            headers=self.headers(),
        )


def duration_words(seconds: float) -> str:
    """`seconds` as a person says a wait or a period: "24 h", "18 h 30 min", "5 min", "42 s" (rounded up to the unit
    said, so that a wait is never said shorter than it is)."""
    whole = math.ceil(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes = math.ceil(whole / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h" if rest == 0 else f"{hours} h {rest} min"


def _allowance(row: dict[str, Any], quota: SpendQuota) -> Allowance:
    return Allowance(
        limit=quota.characters,
        window_seconds=quota.window_seconds,
        used=int(row["used"]),
        window_start=row["window_start"],
        reset_in=max(1, math.ceil(float(row["reset_in"]))),
    )


class Call(msgspec.Struct, frozen=True, kw_only=True):
    """One provider call to reserve: whose, at which provider and model, for which work, and which call of it."""

    owner_id: uuid.UUID
    provider: str
    model: str | None
    kind: UsageKind
    work_id: uuid.UUID
    call_key: str
    characters: int


def _busy() -> TooManyRequests:
    # Not QuotaExceeded: the quota may not be reached, and the transaction this met is aborted.
    return TooManyRequests("Too many of your requests are spending at once; retry in 1 s.", retry_after=1)


async def reserve(conn: Connection, call: Call, quota: SpendQuota) -> Allowance:
    """Reserve `call`'s characters and write its ledger row on `conn`'s transaction (as the service), holding the
    user's counter lock until it ends; QuotaExceeded, with the seconds until the window resets, when the call would
    pass the quota (nothing written). A call reserved before is not counted again."""
    try:
        row = await fetch_one(conn, _Q["reserve"], _reservation(call, quota))
    except LockNotAvailable:
        raise _busy() from None
    return _reserved(row, call, quota)


async def reserve_and_commit(
    conn: Connection,
    call: Call,
    quota: SpendQuota,
    *then: tuple[LiteralString, Mapping[str, Any]],
    before: Sequence[tuple[LiteralString, Mapping[str, Any]]] = (),
) -> Allowance:
    """`reserve` as the last statement of a unit's transaction, sent after the statements `before` (a switch to
    the service, `BECOME_SERVICE`) and with the statements `then` and its COMMIT in one round trip
    (`backend.db.units.commit_with`): the user's counter is locked for the server's time alone, so that many of one
    user's requests at once do not queue for it a round trip each. Whatever `then` writes commits even when the
    quota refuses the call (QuotaExceeded, raised once committed): it should write nothing unless the ledger row
    exists."""
    try:
        answers = await commit_with(conn, *before, (_Q["reserve"], _reservation(call, quota)), *then)
    except LockNotAvailable:
        raise _busy() from None
    return _reserved(answers[len(before)][0], call, quota)


def _reservation(call: Call, quota: SpendQuota) -> dict[str, Any]:
    return {**msgspec.structs.asdict(call), "limit": quota.characters, "window_seconds": quota.window_seconds}


def _reserved(row: dict[str, Any], call: Call, quota: SpendQuota) -> Allowance:
    """The allowance the reservation's row leaves; QuotaExceeded when it refused the call."""
    allowance = _allowance(row, quota)
    if not row["reserved"]:
        raise allowance.exceeded(call.characters)
    return allowance


async def record_seconds(
    conn: Connection, kind: UsageKind, work_id: uuid.UUID, call_key: str, audio_seconds: float
) -> None:
    """Fill in the audio seconds a reserved call returned (as the service, with the result's own record)."""
    params = {"kind": kind, "work_id": work_id, "call_key": call_key, "audio_seconds": audio_seconds}
    await conn.execute(_Q["record_seconds"], params)


async def reserve_resend(conn: Connection, call: Call, quota: SpendQuota) -> Allowance:
    """Reserve one more send of `call` (reserved before, by `reserve`) on `conn`'s transaction (as the service), holding
    the user's counter lock until it ends: its characters again on its row and the counter; QuotaExceeded when that
    would pass the quota, or when the call's row is gone (nothing written either way)."""
    params = {**_reservation(call, quota)}
    try:
        row = await fetch_one(conn, _Q["reserve_resend"], params)
    except LockNotAvailable:
        raise _busy() from None
    return _reserved(row, call, quota)


async def release(conn: Connection, call: Call, sends: int | None, quota: SpendQuota) -> int:
    """Give back `sends` sends of `call` (None: every one) reserved and never made, on `conn`'s transaction (as the
    service): its row loses them (and goes once it has none), and so does the user's counter while it counts the
    window they were reserved in. The characters given back (0 when the call has no row)."""
    params = {**_reservation(call, quota), "sends": sends}
    try:
        row = await fetch_one(conn, _Q["release"], params)
    except LockNotAvailable:
        raise _busy() from None
    return int(row["released"])


async def record_unmetered(conn: Connection, call: Call) -> None:
    """Write a call that sends no text (an enrolment) to the ledger, once, counting nothing against the quota."""
    await conn.execute(_Q["record_unmetered"], msgspec.structs.asdict(call))


#: Told of a job refused for the bound or the quota, with where its user stood (`admit_job`).
Refused = Callable[[JobsLimited | QuotaExceeded, Allowance], None]


class Admitted(msgspec.Struct, frozen=True, kw_only=True):
    """A synthesis job `admit_job` let in: where its user stands, and the refusal their next job meets while this
    one is queued, when it fills the bound."""

    allowance: Allowance
    next_refused: JobsLimited | None


def _jobs_limited(active: int, quota: SpendQuota, allowance: Allowance) -> JobsLimited:
    return JobsLimited(
        f"You have {active} synthesis jobs queued or running (this server allows {quota.queued_jobs}); "
        "queue the next once one has ended.",
        headers=allowance.headers(),
    )


async def admit_job(
    conn: Connection, owner_id: uuid.UUID, characters: int, quota: SpendQuota, *, refused: Refused | None = None
) -> Admitted:
    """Check that one more synthesis job of `characters` may be queued: JobsLimited past VOICEGATE_USER_QUEUED_JOBS
    jobs not yet ended, counted under the user's jobs lock (held until `conn`'s transaction ends, so a burst from
    any number of processes stops at the bound); QuotaExceeded when its characters would pass what is left this
    window, read without a lock; `refused` is told of either first. Nothing is reserved: the worker does, call by
    call, under the counter's lock."""
    try:
        await conn.execute(_Q["lock_jobs"], {"owner_id": owner_id})
    except LockNotAvailable:
        raise _busy() from None
    allowance = await read_allowance(conn, owner_id, quota)
    active = (await fetch_one(conn, _Q["active_jobs"], {"owner_id": owner_id}))["active"]
    refusal: JobsLimited | QuotaExceeded | None = None
    if active >= quota.queued_jobs:
        refusal = _jobs_limited(active, quota, allowance)
    elif allowance.used + characters > quota.characters:
        refusal = allowance.exceeded(characters)
    if refusal is not None:
        if refused is not None:
            refused(refusal, allowance)
        raise refusal
    full = active + 1 >= quota.queued_jobs
    return Admitted(allowance=allowance, next_refused=_jobs_limited(active + 1, quota, allowance) if full else None)


async def read_allowance(conn: Connection, owner_id: uuid.UUID, quota: SpendQuota) -> Allowance:
    """Where the user stands this window, read without a lock (as the service)."""
    row = await fetch_one(conn, _Q["read"], {"owner_id": owner_id, "window_seconds": quota.window_seconds})
    return _allowance(row, quota)


class Spent(msgspec.Struct, frozen=True, kw_only=True):
    """One provider's and kind's share of a ledger."""

    provider: str
    kind: UsageKind
    characters: int
    audio_seconds: float
    calls: int


async def spent(conn: Connection, owner_id: uuid.UUID, since: datetime) -> list[Spent]:
    """The user's ledger since `since`, by provider and kind (as the service)."""
    rows = await fetch_all(conn, _Q["spent"], {"owner_id": owner_id, "since": since})
    return [msgspec.convert(row, Spent) for row in rows]


class ReportRow(msgspec.Struct, frozen=True, kw_only=True):
    """One user's spend at one provider over a period."""

    owner_id: uuid.UUID
    #: Their e-mail in Supabase Auth, when they have one.
    email: str | None
    provider: str
    characters: int
    audio_seconds: float
    calls: int


async def report(conn: Connection, since: datetime, until: datetime) -> list[ReportRow]:
    """Every user's ledger in [since, until), by provider (as the service)."""
    rows = await fetch_all(conn, _Q["report"], {"since": since, "until": until})
    return [msgspec.convert(row, ReportRow) for row in rows]
