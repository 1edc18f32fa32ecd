"""How a consumer's failed delivery ends (`queue_consumers.runtime`): the message visible again after a backoff
with its error recorded, or, once its counted deliveries reach `max_reads`, a dead letter.

A dead letter carries the message as its producer sent it (so a replay starts afresh), the queue and id it came
from, and the error that ended it: the delivery's own, or, for a message delivered too often without finishing
(its worker crashed, say), the error its last failed delivery recorded. It is sent, and the message archived, in
one transaction with the consumer's `DeadLetterHook`, which fails the message's work.
"""

from __future__ import annotations

import logging
import math
import random
from datetime import UTC, datetime

from backend import queues
from backend.db.units import Database
from backend.errors import DatabaseUnavailable
from backend.queues import DeadLetterHook, Message
from queue_consumers.storage_wait import STORAGE_UNAVAILABLE, without_storage_wait
from queue_consumers.stranded import WAITED, StrandedDeliveries

log = logging.getLogger(__name__)


class FailedDeliveries:
    """Backs off or dead-letters one queue's failed deliveries."""

    def __init__(
        self,
        db: Database,
        queue: str,
        deliveries: StrandedDeliveries,
        on_dead_letter: DeadLetterHook | None,
        *,
        max_reads: int,
        backoff_base: float,
        backoff_max: float,
    ) -> None:
        self.db = db
        self.queue = queue
        self.deliveries = deliveries
        self.on_dead_letter = on_dead_letter
        self.max_reads = max_reads
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max

    async def failed(self, message: Message, error: str) -> None:
        """This delivery of `message` failed with `error`: back off, or dead-letter it past `max_reads`."""
        reads = self.deliveries.reads(message)
        if reads >= self.max_reads:
            await self.dead_letter(message, error)
            return
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (reads - 1))
        delay = math.ceil(random.uniform(ceiling / 2, ceiling))  # noqa: S311 - jitter, not security
        try:
            async with self.db.service_transaction() as conn:
                await queues.set_vt(conn, self.queue, message.msg_id, delay)
                await queues.record_error(conn, self.queue, message.msg_id, message.read_ct, error)
                await queues.tell(conn, self.queue)  # another consumer rests until the visibility it read ran out
        except WAITED as exc:
            # Counted, but without its backoff: a failure met with the database out of reach is most likely the
            # outage's, so it is handed back as the database answers (with every connection busy, after its
            # visibility timeout).
            if isinstance(exc, DatabaseUnavailable):
                self.deliveries.strand(message)
        except Exception:
            log.exception("%s: could not schedule message %d again", self.queue, message.msg_id)

    async def dead_letter(self, message: Message, error: str) -> None:
        """Send `message` to the dead-letter queue and archive it, failing its work through the hook."""
        try:
            async with self.db.service_transaction() as conn:
                recorded = await queues.take_error(conn, self.queue, message.msg_id)
                reason = recorded if recorded and error.startswith("delivered too often") else error
                storage = reason.startswith(f"{STORAGE_UNAVAILABLE}:")
                letter = {
                    "sourceQueue": self.queue,
                    "sourceMsgId": message.msg_id,
                    "readCount": message.read_ct,
                    # As its producer sent it: a replay starts with no wait for Storage behind it.
                    "message": without_storage_wait(message.message),
                    "error": {
                        "code": STORAGE_UNAVAILABLE if storage else "max_reads_exceeded",
                        "message": reason[:1000],
                    },
                    "deadAt": datetime.now(UTC).isoformat(),
                }
                await queues.send(conn, queues.DEAD_LETTER, letter)
                await queues.archive(conn, self.queue, message.msg_id)
                if self.on_dead_letter is not None:
                    if storage:
                        await self.on_dead_letter(conn, message, STORAGE_UNAVAILABLE, _after_code(reason))
                    else:
                        await self.on_dead_letter(conn, message, "dead_lettered", reason)
        except WAITED:
            return  # dead-lettered on a later delivery
        except Exception:
            log.exception("%s: could not dead-letter message %d", self.queue, message.msg_id)
            return
        log.error("%s: message %d dead-lettered: %s", self.queue, message.msg_id, reason)


def _after_code(error: str) -> str:
    """A recorded `code: message` error's message."""
    return error.partition(": ")[2] or error
