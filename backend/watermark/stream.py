"""Marking a stream as it is made: 16-bit mono PCM arrives in chunks of any length and leaves marked, a block
at a time, without waiting for the whole.

A block is marked once `BLOCK_S` of audio has come (`FIRST_BLOCK_S` for a piece's first), or when the caller
says the piece has ended (a sentence, each of which a speech stream asks its provider for on its own). Blocks
overlap by `OVERLAP_S`: the end of each is held back until the next is marked over it as well, and the two marks
are crossfaded there, so the mark has no seam where a block ends (blocks marked apart put 5 dB more of the mark's
energy above 3 kHz, where it otherwise has none).

A stream's very first audio does not wait for the mark: a marker made with ``lead`` hands its first chunk on as
it came (`lead`), at most `LEAD_S` of it, and marks what follows, the mark faded in over `OVERLAP_S` where it
starts. Marking it would put the network's work, queued behind every other stream's on a busy CPU, between the
provider's first bytes and the caller's; waiting for a block of it would add the provider's time to make one.
A stream of 2 s or more is found marked all the same: the unmarked lead is 5 % of its frames at most, and the
score averages over them.

`feed`, `lead` and `take` are cheap bookkeeping for the event loop; `mark` is CPU work for the fair CPU
executor. One stream's calls come one after another, never at once.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from backend.watermark.api import added

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: Audio gathered before a block is marked: long enough for the network's context (0.15 s either side of a
#: frame) to see mostly audio rather than the block's edges.
BLOCK_S: Final = 0.5
#: The first block of a piece is shorter, so that its first bytes wait for less of the provider's audio.
FIRST_BLOCK_S: Final = 0.2
#: The most of a stream's first audio that leaves unmarked, as it came (`StreamMarker.lead`).
LEAD_S: Final = 0.1
#: Held back at the end of each block and crossfaded with the next block's mark.
OVERLAP_S: Final = 0.02
_SCALE: Final = 32768.0


class StreamMarker:
    """Marks one stream's 16-bit little-endian mono PCM at ``rate``."""

    def __init__(self, rate: int, *, lead: bool = False) -> None:
        """``lead`` for a stream's first piece: its first chunk goes on unmarked (`lead`)."""
        self._rate = rate
        self._block = round(FIRST_BLOCK_S * rate)
        self._overlap = round(OVERLAP_S * rate)
        #: Bytes still to hand on unmarked, by `lead`; 0 once it has (or for a marker without one).
        self._lead = 2 * round(LEAD_S * rate) if lead else 0
        #: Whether the next block's mark starts from nothing (after the lead), faded in.
        self._fade_in = False
        self._pending = bytearray()
        #: The end of the last block, held back: its samples and the mark made for them.
        self._held = np.zeros(0, dtype=np.float32)
        self._held_mark = np.zeros(0, dtype=np.float64)

    def feed(self, pcm: bytes) -> bool:
        """Take a chunk; whether a block is now ready to `take` and `mark` (ask `lead` first)."""
        self._pending += pcm
        return self.ready

    @property
    def ready(self) -> bool:
        """Whether a block of audio waits to be marked."""
        return len(self._pending) // 2 >= self._block + self._lead // 2

    def lead(self) -> bytes:
        """The stream's first whole samples, as they came and unmarked, up to `LEAD_S` of them: once, as soon as
        there are any; b"" before, after, and for a marker made without ``lead``."""
        whole = min(self._lead, len(self._pending) - len(self._pending) % 2)
        if whole == 0:
            return b""
        out = bytes(self._pending[:whole])
        del self._pending[:whole]
        self._lead, self._fade_in = 0, True
        return out

    def take(self, *, last: bool) -> tuple[F32, bool] | None:
        """The samples to mark now (the held end of the last block first), or None when there are none; ``last``
        when the piece has ended (nothing is held back then). A trailing odd byte waits for the next chunk."""
        whole = len(self._pending) - len(self._pending) % 2
        if whole == 0 and not (last and self._held.size):
            return None
        fresh = np.frombuffer(bytes(self._pending[:whole]), dtype="<i2").astype(np.float32) / np.float32(_SCALE)
        del self._pending[:whole]
        self._lead = 0  # what is taken is marked: nothing after it may leave unmarked
        return np.concatenate([self._held, fresh]), last

    def mark(self, taken: tuple[F32, bool]) -> bytes:
        """The marked PCM of ``taken`` (`take`'s), less the end held back for the next block."""
        samples, last = taken
        held = self._held_mark.size
        change = np.zeros(samples.size, dtype=np.float64)
        if samples.size == held:  # the piece ended with nothing after the held end: it keeps its mark
            change[:] = self._held_mark
        else:
            made = added(samples, self._rate)
            change[: made.size] = made
        if held and samples.size > held:
            fade = np.linspace(0.0, 1.0, held + 2)[1:-1]
            change[:held] = self._held_mark * (1 - fade) + change[:held] * fade
        elif self._fade_in:  # the lead before it went out unmarked: the mark starts from nothing, without a step
            rise = min(self._overlap, samples.size)
            change[:rise] *= np.linspace(0.0, 1.0, rise + 2)[1:-1]
        self._fade_in = False
        self._block = round(BLOCK_S * self._rate)
        keep = 0 if last else min(self._overlap, samples.size)
        self._held, self._held_mark = samples[samples.size - keep :], change[samples.size - keep :]
        out = samples[: samples.size - keep].astype(np.float64) + change[: samples.size - keep]
        return np.clip(np.round(out * _SCALE), -32768, 32767).astype("<i2").tobytes()
