"""What a consumer remembers of the deliveries an outage cut short (`queue_consumers.runtime`): which of a
message's deliveries do not count toward `max_reads`, and which messages it owes a hand-back.

A delivery that met the database down or hung, or found no connection to spare, did nothing wrong: it is not
counted. A message whose handler met the database down is stranded, invisible with nobody holding it; the
consumer's first read that gets an answer hands it back (visible at once), unless somebody has read it since.
"""

from __future__ import annotations

from typing import Any

from backend.errors import DatabaseUnavailable, TooManyRequests
from backend.queues import Message

#: No answer from the database for this delivery (down, hung, or every connection busy): nothing this
#: delivery did wrong, already logged as an outage, and tried again without counting, as if never read.
WAITED = (DatabaseUnavailable, TooManyRequests)
#: Most messages whose uncounted deliveries a consumer remembers (older ones are forgotten first).
_UNCOUNTED_MAX = 10_000


class StrandedDeliveries:
    """One consumer's uncounted deliveries and stranded messages."""

    def __init__(self) -> None:
        #: Deliveries of a message that ended waiting for the database, not counted toward `max_reads`.
        self.uncounted: dict[int, int] = {}
        #: Messages whose handler met the database down, each with the `read_ct` it was read with: handed back
        #: by the next read that gets an answer, unless somebody has read the message since.
        self.stranded: dict[int, int] = {}
        #: Those of them a read took whose commit went unanswered: the read may not have happened at all, so
        #: its delivery is not counted toward `max_reads` only once the hand-back finds it did.
        self.unconfirmed: set[int] = set()

    def reads(self, message: Message) -> int:
        """The message's deliveries that count toward `max_reads` (this one included)."""
        return message.read_ct - self.uncounted.get(message.msg_id, 0)

    def not_counted(self, msg_id: int) -> None:
        """One more delivery of `msg_id` that does not count toward `max_reads`."""
        if len(self.uncounted) >= _UNCOUNTED_MAX and msg_id not in self.uncounted:
            self.uncounted.pop(next(iter(self.uncounted)))
        self.uncounted[msg_id] = self.uncounted.get(msg_id, 0) + 1

    def strand(self, message: Message) -> None:
        """`message` met the database down: hand it back with the next read that gets an answer."""
        self.stranded[message.msg_id] = message.read_ct

    def waits(self, message: Message, exc: DatabaseUnavailable | TooManyRequests) -> None:
        """`message` could not be handled, handed back or scheduled because the database was out of reach or had
        no connection to spare: it comes back uncounted, handed back by the first read that gets an answer (so
        as the database does) or, when every connection was busy, after its visibility timeout."""
        self.not_counted(message.msg_id)
        if isinstance(exc, DatabaseUnavailable):
            self.strand(message)

    def owed(self) -> tuple[dict[int, int], set[int]]:
        """What the next read is to hand back, and those of them whose read's commit went unanswered."""
        stranded = dict(self.stranded)
        return stranded, self.unconfirmed & stranded.keys()

    def settled(self, archived: list[int], handed_back: dict[int, int], uncounted: set[int]) -> None:
        """Forget what a read archived and handed back (`owed`'s first part, as it was); `uncounted`: messages it
        handed back whose unanswered read it found did happen, a delivery nobody handled."""
        for msg_id in archived:
            self.uncounted.pop(msg_id, None)
        for msg_id in uncounted:
            self.not_counted(msg_id)
        for msg_id, read_ct in handed_back.items():
            if self.stranded.get(msg_id) == read_ct:
                del self.stranded[msg_id]
                self.unconfirmed.discard(msg_id)

    def unanswered(self, rows: list[dict[str, Any]], held: set[int]) -> None:
        """A read's rows came but the answer to its commit did not (the pipeline commits as it ends): the server
        may have committed it as it resumed, leaving its messages invisible for their whole visibility timeout
        with nobody holding them, so they are handed back with the database. `held`: messages the consumer holds,
        which their holders keep invisible."""
        for row in rows:
            if row["msg_id"] not in held:
                self.stranded[row["msg_id"]] = row["read_ct"]
                self.unconfirmed.add(row["msg_id"])
