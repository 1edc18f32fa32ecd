"""How a consumer waits out Storage (`queue_consumers.runtime`): an outage of Storage is not the message's failure.

A consumer whose handlers need Storage reads nothing while its `DependencyCheck` finds Storage unreachable. A
message whose handler met Storage down anyway is handed back at once as a new message carrying when its wait
began (`STORAGE_WAIT` in its body), for a consumer that reaches Storage; its delivery does not count. Past
`storage_wait_seconds` the message is reported once (an audit event, a count at /metrics, an ERROR line), and
from then on a delivery that meets Storage down is a failed one, so that it ends as a `storage_unavailable` dead
letter. A delivery that gets past Storage ends the wait: a message sent again after it carries none.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from prometheus_client import Counter

from backend import queues
from backend.db.audit import record_audit
from backend.db.connection import Connection
from backend.db.units import Database
from backend.outages import Outage
from backend.queues import Message
from queue_consumers.stranded import WAITED, StrandedDeliveries

log = logging.getLogger(__name__)
#: How soon a message handed back for a Storage outage is visible again, to a consumer that reaches Storage.
_HANDED_BACK_SECONDS = 1
#: Where a message handed back for Storage keeps its wait: `{"since": ISO time, "reported": bool}`.
STORAGE_WAIT = "storageWait"
#: The code a message that waited out Storage past its bound fails (and is dead-lettered) with; its
#: deliveries' recorded errors start with it.
STORAGE_UNAVAILABLE = "storage_unavailable"
#: The audit event of a message reported for waiting out Storage past its bound.
STORAGE_WAIT_AUDIT = "queue.storage_wait_exceeded"
#: Served at /metrics by an API process that runs the consumers too (`voicegate up`).
STORAGE_WAIT_EXCEEDED = Counter(
    "voicegate_queue_storage_wait_exceeded",
    "Queue messages reported for waiting out Storage longer than VOICEGATE_STORAGE_WAIT_SECONDS",
    ("queue",),
)


class StorageWait(msgspec.Struct, frozen=True):
    """How long a message has waited out Storage (`STORAGE_WAIT` in its body)."""

    since: datetime
    reported: bool = False


def storage_wait(message: dict[str, Any]) -> StorageWait | None:
    """The message's wait for Storage, if it has one (an unreadable one counts as none)."""
    try:
        return msgspec.convert(message.get(STORAGE_WAIT), StorageWait | None)
    except msgspec.ValidationError:
        return None


def without_storage_wait(message: dict[str, Any]) -> dict[str, Any]:
    """The message as its producer sent it."""
    return {key: value for key, value in message.items() if key != STORAGE_WAIT}


class DependencyCheck:
    """Whether a dependency every handler of a consumer needs (Storage) answers, asked before each read so
    that a consumer takes no work it could only fail. Open once a probe has answered, for as long as the
    dependency's outage tracker (fed by every call to it) has it up; while it is down, or before it was
    ever checked, it is probed again at most every `every` seconds. The consumers of a process share one."""

    def __init__(self, outage: Outage, probe: Callable[[], Awaitable[bool]], every: float) -> None:
        self._outage = outage
        self._probe = probe
        self._every = every
        self._checked = False
        self._probed_at = -math.inf
        self._lock = asyncio.Lock()

    async def open(self) -> bool:
        """Whether to take work now (probing the dependency if it is its time)."""
        if self._checked and not self._outage.down:
            return True
        async with self._lock:
            if self._checked and not self._outage.down:
                return True  # another consumer's probe answered meanwhile
            if time.monotonic() - self._probed_at < self._every:
                return False
            self._probed_at = time.monotonic()
            self._checked = await self._probe()
            return self._checked


async def send_anew(conn: Connection, queue: str, message: Message, delay: int, wait: StorageWait | None) -> None:
    """On `conn`'s transaction: archive this delivery and send the message anew (with `wait`, or without any wait
    for Storage); not anew when it was gone already (cancelled while in hand: its user was erased)."""
    if not await queues.archive(conn, queue, message.msg_id):
        return
    body = without_storage_wait(message.message)
    if wait is not None:
        body[STORAGE_WAIT] = msgspec.to_builtins(wait)
    await queues.send(conn, queue, body, delay)


class StorageWaits:
    """Sends one queue's messages again, each with its wait for Storage so far or without one, and ends the
    deliveries that met Storage down (see the module docstring). `failed` ends a delivery that counts."""

    def __init__(
        self,
        db: Database,
        queue: str,
        deliveries: StrandedDeliveries,
        failed: Callable[[Message, str], Awaitable[None]],
        *,
        bound_seconds: float,
        max_reads: int,
    ) -> None:
        self.db = db
        self.queue = queue
        self.deliveries = deliveries
        self.failed = failed
        self.bound_seconds = bound_seconds
        self.max_reads = max_reads

    async def send_again(self, message: Message, delay: int, *, wait: StorageWait | None = None) -> None:
        """Send the message anew, visible after `delay` seconds, and archive this delivery, in one
        transaction: the wait counts as no delivery, whoever reads it next. `wait`: its wait for Storage
        so far; without one, a wait it had is over (this delivery got past Storage)."""
        try:
            async with self.db.service_transaction() as conn:
                await send_anew(conn, self.queue, message, delay, wait)
        except WAITED as exc:
            self.deliveries.waits(message, exc)  # handlers are safe to repeat
        except Exception:
            log.exception("%s: could not archive message %d", self.queue, message.msg_id)

    async def unavailable(self, message: Message) -> None:
        """Storage's outage, not this message's failure: handed back uncounted for a consumer that reaches
        Storage while the message's wait is within its bound; reported once past it, and from then on each
        delivery that meets Storage down is a failed one."""
        wait = storage_wait(message.message)
        if wait is not None and wait.reported:
            began = wait.since.isoformat(timespec="seconds")
            await self.failed(
                message, f"{STORAGE_UNAVAILABLE}: Storage has been unreachable for this work since {began}"
            )
            return
        now = datetime.now(UTC)
        since = now if wait is None else wait.since
        if (now - since).total_seconds() < self.bound_seconds:
            await self.send_again(message, _HANDED_BACK_SECONDS, wait=StorageWait(since))
            return
        await self._report(message, since, now)

    async def _report(self, message: Message, since: datetime, now: datetime) -> None:
        """Report a message that has waited out Storage past its bound, and send it again marked reported, in
        one transaction (so it is reported once, whichever worker reads it next); then log and count it."""
        waited = round((now - since).total_seconds())
        detail = {
            "queue": self.queue,
            "msg_id": message.msg_id,
            "message": without_storage_wait(message.message),
            "waiting_since": since,
            "waited_seconds": waited,
            "bound_seconds": self.bound_seconds,
        }
        try:
            async with self.db.service_transaction() as conn:
                await send_anew(conn, self.queue, message, _HANDED_BACK_SECONDS, StorageWait(since, reported=True))
                subject = f"{self.queue}/{message.msg_id}"
                await record_audit(conn, "worker", STORAGE_WAIT_AUDIT, "queue_message", subject, detail=detail)
        except WAITED as exc:
            self.deliveries.waits(message, exc)  # reported by a later delivery
            return
        except Exception:
            log.exception("%s: could not report message %d waiting out Storage", self.queue, message.msg_id)
            return
        STORAGE_WAIT_EXCEEDED.labels(self.queue).inc()
        log.error(
            "%s: message %d has waited out Storage for %d s (since %s), longer than VOICEGATE_STORAGE_WAIT_SECONDS"
            " (%d s): from now on a delivery that meets Storage down counts, and the message is dead-lettered"
            " after %d of them",
            self.queue,
            message.msg_id,
            waited,
            since.isoformat(timespec="seconds"),
            self.bound_seconds,
            self.max_reads,
        )
