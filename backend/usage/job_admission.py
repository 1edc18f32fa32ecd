"""The way a user's synthesis jobs come to the database's count in one API process: one at a time per user, and
refused at once for a moment after the database refused one.

The database decides whether a job may be queued (`backend.usage.ledger.admit_job`): under the user's jobs lock it
counts their jobs and reads their counter, some milliseconds of the API's CPU and of the database's, and a
connection held meanwhile. A client flooding `POST /api/v1/clone` made every one of its requests do that, each
holding a connection while it waited for that lock (up to its 800 ms timeout) behind the others, so that the
connections other users' requests needed went to waiting on one user's lock, and the refusals took the CPU.

So in each process a user's job creates go one at a time (`one_at_a_time`; the others wait in the process, holding
no connection, at most `LINE_WAIT_S`), and once the database has refused one for the jobs bound (`jobs_limited`) or
the quota (`quota_exceeded`), the same user's next ones are refused here, with the same words and fields, for
`REMEMBER_S` (never past the window's end): neither refusal changes within its Retry-After unless one of the user's
jobs ends (jobs) or the window resets (quota; or an operator gives it back). A job accepted forgets the refusal, or,
when it filled the bound, is remembered as the refusal of the next; a text short enough for what was left is asked
of the database as before. So a job may be refused for up to
`REMEMBER_S` after one of the user's jobs ended, as if the client had asked a moment sooner, and the database sees
about one such transaction per user and process a second, whatever the client sends.

A refusal from memory is answered after `PAUSE_S`: only a client that asks again within the Retry-After it was
given meets one, and one asking back the moment it is answered would otherwise take an API process's whole core
in refusals, which every other user's requests (and the workers' Storage) wait behind. The pause costs a timer,
and holds no place among the user's requests in flight and no connection.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import msgspec

from backend.errors import JobsLimited, QuotaExceeded, TooManyRequests
from backend.usage.ledger import Admitted, Allowance

#: How long a refusal from the database is remembered (seconds).
REMEMBER_S: Final = 1.0
#: How long a job waits for the user's job before it in this process (seconds) before it is answered 429.
LINE_WAIT_S: Final = 1.0
#: How long a refusal from memory waits before it is answered (seconds): the client asked again within the
#: Retry-After it was given, and one that asks back at once must not get a thousand answers a second.
PAUSE_S: Final = 0.25
#: The route option (`opt={QUEUES_JOBS: True}`) of a route that queues synthesis jobs: the entry check refuses what
#: is remembered refused before the body is read, when no text could change the answer.
QUEUES_JOBS: Final = "queues_jobs"
#: Past this many users remembered, the oldest are forgotten first.
_KEPT: Final = 10_000


@dataclass(frozen=True)
class _Refused:
    """What the database last refused a user's job for, until when it holds (monotonic seconds)."""

    until: float
    #: The jobs bound's refusal, when that was it.
    jobs: JobsLimited | None
    #: Where the user stood; and when the window resets (monotonic seconds).
    allowance: Allowance
    resets_at: float


class _Line:
    """A user's job creates in this process, one at a time."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class JobAdmission:
    """One API process's way of a user's synthesis jobs to the database (see the module docstring)."""

    def __init__(
        self,
        *,
        remember: float = REMEMBER_S,
        line_wait: float = LINE_WAIT_S,
        pause: float = PAUSE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._remember = remember
        self._line_wait = line_wait
        self._pause = pause
        self._clock = clock
        self._refused: dict[str, _Refused] = {}
        self._lines: dict[str, _Line] = {}

    @asynccontextmanager
    async def one_at_a_time(self, user: str) -> AsyncIterator[None]:
        """Hold `user`'s turn for the block (a job's way through the database); TooManyRequests when the turn has
        not come within `LINE_WAIT_S`."""
        line = self._lines.get(user)
        if line is None:
            line = self._lines[user] = _Line()
        line.users += 1
        try:
            try:
                async with asyncio.timeout(self._line_wait):
                    await line.lock.acquire()
            except TimeoutError:
                raise TooManyRequests(
                    "Too many of your jobs are being queued at once; retry in 1 s.", retry_after=1
                ) from None
            try:
                yield
            finally:
                line.lock.release()
        finally:
            line.users -= 1
            if not line.users:
                del self._lines[user]

    def refused(self, user: str, error: JobsLimited | QuotaExceeded, allowance: Allowance) -> None:
        """The database refused `user`'s job with `error`, `allowance` being where the user stood."""
        now = self._clock()
        resets_at = now + allowance.reset_in
        remembered = _Refused(
            until=min(now + self._remember, resets_at),
            jobs=error if isinstance(error, JobsLimited) else None,
            allowance=allowance,
            resets_at=resets_at,
        )
        self._refused.pop(user, None)
        if len(self._refused) >= _KEPT:
            self._refused.pop(next(iter(self._refused)))
        self._refused[user] = remembered

    def accepted(self, user: str, admitted: Admitted) -> None:
        """The database accepted one of `user`'s jobs: nothing of theirs is refused from memory, unless it filled
        the bound, which refuses their next as the database would."""
        self._refused.pop(user, None)
        if admitted.next_refused is not None:
            self.refused(user, admitted.next_refused, admitted.allowance)

    async def check(self, user: str, characters: int | None) -> None:
        """Raise the refusal the database would answer `user`'s job of `characters` (None: not read yet, any text)
        when a refusal of theirs is remembered that decides it, after `PAUSE_S`; otherwise nothing (the database
        decides)."""
        refusal = self.remembered(user, characters)
        if refusal is not None:
            await asyncio.sleep(self._pause)
            raise refusal

    def remembered(self, user: str, characters: int | None) -> JobsLimited | QuotaExceeded | None:
        """The refusal a remembered one of `user`'s decides for a job of `characters` (None: any text), if any."""
        remembered = self._refused.get(user)
        if remembered is None:
            return None
        now = self._clock()
        if now >= remembered.until:
            del self._refused[user]
            return None
        reset_in = max(1, math.ceil(remembered.resets_at - now))
        allowance = msgspec.structs.replace(remembered.allowance, reset_in=reset_in)
        if remembered.jobs is not None:
            return JobsLimited(remembered.jobs.detail, headers=allowance.headers())
        if characters is not None and allowance.used + characters > allowance.limit:
            return allowance.exceeded(characters)
        if characters is None and allowance.remaining == 0:
            return QuotaExceeded(
                f"You have sent your quota of {allowance.limit} characters per {allowance.window_seconds} s;"
                f" it resets in {allowance.reset_in} s.",
                retry_after=allowance.reset_in,
                headers=allowance.headers(),
            )
        return None
