"""A stream is marked as it comes, in blocks whose marks are crossfaded, whatever the size of its chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from backend.watermark import detect, mark, perth
from backend.watermark.stream import FIRST_BLOCK_S, StreamMarker

CLIP = Path(__file__).resolve().parents[2] / "clips" / "librispeech" / "367" / "367-130732-0008.flac"
RATE = 24000


def pcm_of(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2").tobytes()


def streamed(pcm: bytes, chunk: int) -> bytes:
    """``pcm`` through a marker in chunks of ``chunk`` bytes (odd sizes split samples), then its end."""
    marker = StreamMarker(RATE)
    out = b""
    for start in range(0, len(pcm), chunk):
        if marker.feed(pcm[start : start + chunk]) and (taken := marker.take(last=False)) is not None:
            out += marker.mark(taken)
    taken = marker.take(last=True)
    assert taken is not None
    return out + marker.mark(taken)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    samples, rate = soundfile.read(CLIP, dtype="float32")
    return perth.to_rate(samples, rate, RATE)


@pytest.mark.parametrize("chunk", [961, 9600, 10**9])
def test_a_stream_in_chunks_of_any_size_comes_out_whole_and_marked(speech: np.ndarray, chunk: int) -> None:
    pcm = pcm_of(speech)
    assert not detect(np.frombuffer(pcm, dtype="<i2") / 32768.0, RATE).present

    out = streamed(pcm, chunk)

    assert len(out) == len(pcm)
    assert detect(np.frombuffer(out, dtype="<i2") / 32768.0, RATE).score > 0.95


def high_share_db(change: np.ndarray) -> float:
    """The share of ``change``'s energy above 3 kHz, in dB: the mark has none to speak of, a seam spreads some."""
    energy = np.abs(np.fft.rfft(change)) ** 2
    return float(10 * np.log10(energy[np.fft.rfftfreq(change.size, 1 / RATE) > 3000].sum() / energy.sum()))


@pytest.mark.parametrize("chunk", [960, 9600])
def test_blocks_leave_no_seam_in_the_mark(speech: np.ndarray, chunk: int) -> None:
    # What lies above 3 kHz of the whole clip's mark, once rounded to 16 bits, is the rounding (-47.7 dB); the
    # blocks' crossfaded marks add nothing to it (-47.9), where blocks marked apart put 5 dB more there (-42.9).
    pcm = pcm_of(speech)
    original = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    blocks = np.frombuffer(streamed(pcm, chunk), dtype="<i2").astype(np.float64) - original
    whole = np.round(mark(original / 32768.0, RATE) * 32768.0) - original

    assert high_share_db(blocks) < high_share_db(whole) + 1.0
    level = 10 * np.log10(np.sum(blocks**2) / np.sum(whole**2))
    assert abs(level) < 1.0, "blocks carry a mark as strong as the whole clip's"


def test_a_piece_shorter_than_a_block_is_marked_when_it_ends(speech: np.ndarray) -> None:
    marker = StreamMarker(RATE)
    short = pcm_of(speech[: int(FIRST_BLOCK_S * RATE) - 10])

    assert not marker.feed(short)
    taken = marker.take(last=True)
    assert taken is not None
    assert len(marker.mark(taken)) == len(short)
    assert marker.take(last=True) is None
