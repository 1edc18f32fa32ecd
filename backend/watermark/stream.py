"""Marking a stream as it is made: 16-bit mono PCM arrives in chunks of any length and leaves marked, a block
at a time, without waiting for the whole.

A block is marked once `BLOCK_S` of audio has come (`FIRST_BLOCK_S` for a piece's first), or when the caller
says the piece has ended (a sentence, each of which a speech stream asks its provider for on its own). Blocks
overlap by `OVERLAP_S`: the end of each is held back until the next is marked over it as well, and the two marks
are crossfaded there, so the mark has no seam where a block ends (blocks marked apart put 5 dB more of the mark's
energy above 3 kHz, where it otherwise has none). A provider that hands over whole phrases (the `local` engine)
is marked phrase by phrase and waits for nothing; one that streams small chunks waits for `FIRST_BLOCK_S` of
them before its first bytes leave.

`feed` and `take` are cheap bookkeeping for the event loop; `mark` is CPU work for the fair CPU executor. One
stream's calls come one after another, never at once.
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
#: The first block of a piece is shorter, so that a stream's first bytes wait for less of the provider's audio.
FIRST_BLOCK_S: Final = 0.2
#: Held back at the end of each block and crossfaded with the next block's mark.
OVERLAP_S: Final = 0.02
_SCALE: Final = 32768.0


class StreamMarker:
    """Marks one stream's 16-bit little-endian mono PCM at ``rate``."""

    def __init__(self, rate: int) -> None:
        self._rate = rate
        self._block = round(FIRST_BLOCK_S * rate)
        self._overlap = round(OVERLAP_S * rate)
        self._pending = bytearray()
        #: The end of the last block, held back: its samples and the mark made for them.
        self._held = np.zeros(0, dtype=np.float32)
        self._held_mark = np.zeros(0, dtype=np.float64)

    def feed(self, pcm: bytes) -> bool:
        """Take a chunk; whether a block is now ready to `mark`."""
        self._pending += pcm
        return len(self._pending) // 2 >= self._block

    def take(self, *, last: bool) -> tuple[F32, bool] | None:
        """The samples to mark now (the held end of the last block first), or None when there are none; ``last``
        when the piece has ended (nothing is held back then). A trailing odd byte waits for the next chunk."""
        whole = len(self._pending) - len(self._pending) % 2
        if whole == 0 and not (last and self._held.size):
            return None
        fresh = np.frombuffer(bytes(self._pending[:whole]), dtype="<i2").astype(np.float32) / np.float32(_SCALE)
        del self._pending[:whole]
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
        self._block = round(BLOCK_S * self._rate)
        keep = 0 if last else min(self._overlap, samples.size)
        self._held, self._held_mark = samples[samples.size - keep :], change[samples.size - keep :]
        out = samples[: samples.size - keep].astype(np.float64) + change[: samples.size - keep]
        return np.clip(np.round(out * _SCALE), -32768, 32767).astype("<i2").tobytes()
