"""Streams still opening, so that the marks of streams already flowing wait for their first bytes.

Twenty streams opened at once share one event loop and the process's cores: each opening's request, database
round trips and provider request run on the loop, and its first bytes leave from it. A mark is CPU work on the
executor's thread (`backend.watermark.stream`), and while one runs the loop waits for the interpreter lock at
each of its steps and the database for a core. A stream's mark is audio that follows audio already sent, while
an opening stream's listener has heard nothing yet: so a mark waits, before it starts, until no stream is
opening, for at most `MARK_HOLD_S`; a steady run of openings delays each block's mark by no more than that.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

#: The longest a mark waits for the streams opening to have sent their first bytes. A block of 0.5 s marked in
#: about 25 ms still keeps ahead of its audio after this wait, and a provider that takes longer than this to
#: answer one opening holds no mark beyond it.
MARK_HOLD_S: Final = 0.15


class Openings:
    """How many streams are opening (from the request's first check to their first bytes handed on); the
    event loop's alone, like everything else of a stream."""

    def __init__(self) -> None:
        self._count = 0
        self._settled = asyncio.Event()
        self._settled.set()

    @property
    def count(self) -> int:
        """The streams opening now."""
        return self._count

    def begin(self) -> Opening:
        """One more stream opening; `Opening.end` it once its first bytes are handed on, or it is refused."""
        self._count += 1
        self._settled.clear()
        return Opening(self)

    def _end(self) -> None:
        self._count -= 1
        if self._count == 0:
            self._settled.set()

    async def settled(self, limit_s: float | None = None) -> None:
        """Return once no stream is opening, or after `limit_s` (`MARK_HOLD_S` unless given), whichever comes
        first."""
        if self._count == 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), MARK_HOLD_S if limit_s is None else limit_s)


class Opening:
    """One stream's opening; `end` may be called more than once (only the first counts)."""

    __slots__ = ("_openings",)

    def __init__(self, openings: Openings) -> None:
        self._openings: Openings | None = openings

    @property
    def pending(self) -> bool:
        """Whether the stream has yet to hand on its first bytes."""
        return self._openings is not None

    def end(self) -> None:
        """The stream has handed on its first bytes, or will send none."""
        if self._openings is not None:
            self._openings._end()
            self._openings = None
