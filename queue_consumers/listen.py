"""What wakes a resting consumer (`queue_consumers.runtime`): its `Wake`, set by a notification of its queue, a
finished message or the stop, and the `Listener` that holds the queue's LISTEN connection.

Every committed insert into a queue notifies, so a consumer that hears its queue rests between reads until it is
told of work; while the LISTEN connection is down its consumer polls, and the listener connects again with a
growing pause. Notifications sent while nobody listened are gone, so a listener that connects wakes its consumer
to look once.
"""

from __future__ import annotations

import asyncio
import logging
import time

import psycopg

from backend import queues
from backend.db.connection import last_answer_at
from backend.db.units import translate_db_errors
from backend.errors import DatabaseUnavailable
from backend.outages import DATABASE

log = logging.getLogger(__name__)
#: libpq's connect timeout for the LISTEN connection (whole seconds), so a hung server delays it only.
_LISTEN_CONNECT_TIMEOUT = 5


class Wake:
    """What a consumer waits for between reads: a notification, a finished message or the stop (`set`), or its
    time running out. A future and a timer per wait, so that a wait makes no task."""

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        """Wake the consumer (now, or as its next wait begins)."""
        self._set = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def clear(self) -> None:
        """Forget wake-ups so far."""
        self._set = False

    async def wait(self, seconds: float) -> None:
        """Return once set, or after `seconds`."""
        if self._set:
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(seconds, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Listener:
    """Holds one queue's LISTEN connection at `dsn`, setting `wake` at each notification; `listening` is set
    while the connection is up."""

    def __init__(self, dsn: str, queue: str, wake: Wake, listening: asyncio.Event) -> None:
        self.dsn = dsn
        self.queue = queue
        self.wake = wake
        self.listening = listening

    async def run(self) -> None:
        """Listen until cancelled, connecting again whenever the connection is lost; returns only by raising."""
        pause = 0.1
        while True:
            began = time.monotonic()
            try:
                with translate_db_errors():
                    connecting = psycopg.AsyncConnection.connect(
                        self.dsn, autocommit=True, connect_timeout=_LISTEN_CONNECT_TIMEOUT
                    )
                    async with await connecting as conn:
                        await queues.listen(conn, self.queue)
                        pause = 0.1
                        self.listening.set()
                        # Notifications sent while we were not listening are gone: look once.
                        self.wake.set()
                        while True:
                            await queues.notified(conn)
                            self.wake.set()
            except DatabaseUnavailable as exc:
                # The database's outage, logged once as it starts; its end is logged by the first unit of work
                # that gets an answer again (a listener back before the pool is would end it too early, and
                # the pool's next wait would start it again). Meanwhile the polls deliver.
                # A connection refused after another connection got an answer says nothing new: it was tried
                # as the server came back (CI: a refusal by the restarting server, read just after the first
                # answer, began a new outage, and a request waiting for a connection was answered 503).
                if self.listening.is_set() or last_answer_at() < began:
                    DATABASE.failed(exc)
                self.listening.clear()
                self.wake.set()  # a consumer resting on its notifications polls again meanwhile
                log.debug("%s: LISTEN connection lost; polling until it is back", self.queue)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
