"""A stream is marked as it comes, in blocks whose marks are crossfaded, whatever the size of its chunks; its
first chunk may leave before any mark is made, and the stream is found marked all the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from backend.watermark import detect, mark, perth
from backend.watermark.stream import FIRST_BLOCK_S, LEAD_S, OVERLAP_S, StreamMarker

CLIP = Path(__file__).resolve().parents[2] / "clips" / "librispeech" / "367" / "367-130732-0008.flac"
RATE = 24000


def pcm_of(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2").tobytes()


def streamed(pcm: bytes, chunk: int, *, lead: bool = False) -> bytes:
    """``pcm`` through a marker in chunks of ``chunk`` bytes (odd sizes split samples), then its end, as a speech
    stream hands it on (its lead first)."""
    marker = StreamMarker(RATE, lead=lead)
    out = b""
    for start in range(0, len(pcm), chunk):
        marker.feed(pcm[start : start + chunk])
        out += marker.lead()
        if marker.ready and (taken := marker.take(last=False)) is not None:
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


def samples_of(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2") / 32768.0


@pytest.mark.parametrize("chunk", [2400, 4800, 10**9])
def test_a_stream_whose_first_chunk_left_before_its_mark_was_made_is_found_marked(
    speech: np.ndarray, chunk: int
) -> None:
    # The first chunk leaves as it came (the provider's first 0.05 s, 0.1 s, or a local phrase's first 0.1 s):
    # nothing has been marked yet when it does. The rest carries the mark, and the whole is found marked.
    pcm = pcm_of(speech)
    marker = StreamMarker(RATE, lead=True)
    marker.feed(pcm[:chunk])
    first = marker.lead()
    assert first == pcm[: min(chunk, 2 * round(LEAD_S * RATE))]
    assert marker.lead() == b"", "only the stream's first chunk leaves unmarked"

    out = streamed(pcm, chunk, lead=True)

    assert out.startswith(first)
    assert len(out) == len(pcm)
    assert out[len(first) :] != pcm[len(first) :]
    assert detect(samples_of(out), RATE).score > 0.95
    two_seconds = 2 * 2 * RATE
    assert detect(samples_of(out[:two_seconds]), RATE).present


def test_the_mark_after_the_lead_rises_from_nothing(speech: np.ndarray) -> None:
    pcm = pcm_of(speech)
    lead = 2 * round(LEAD_S * RATE)
    change = np.frombuffer(streamed(pcm, lead, lead=True), dtype="<i2").astype(np.float64) - np.frombuffer(
        pcm, dtype="<i2"
    )
    rise = round(OVERLAP_S * RATE)
    after = change[lead // 2 :]
    assert not change[: lead // 2].any()
    # The mark's first samples after the lead are a fraction of what it is once risen: no step where it starts.
    assert np.abs(after[:5]).max() < 0.25 * np.abs(after[rise : 2 * rise]).max()


def test_a_stream_taken_before_its_lead_is_marked_whole(speech: np.ndarray) -> None:
    # A caller that marks first has nothing left to hand on unmarked afterwards.
    marker = StreamMarker(RATE, lead=True)
    pcm = pcm_of(speech[:RATE])
    marker.feed(pcm)
    taken = marker.take(last=False)
    assert taken is not None
    marker.mark(taken)
    marker.feed(pcm)
    assert marker.lead() == b""
