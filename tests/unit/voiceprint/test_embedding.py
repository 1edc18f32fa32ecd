"""Voiceprints of real speech: one speaker's clips match at the published threshold, different speakers' do
not; a print is a deterministic unit vector whatever the rate or layout of the audio; too little speech gives
none; a print survives its bytes; threads may make prints at once."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
from scipy.signal import resample

from backend.voiceprint import DIMENSIONS, THRESHOLD, Voiceprint, speech_seconds, voiceprint, weights
from backend.voiceprint import encoder as network
from tests.unit.voiceprint.conftest import Clip


def test_one_speakers_clips_match_and_different_speakers_do_not(
    clips: list[Clip], prints: dict[str, Voiceprint]
) -> None:
    same, different = [], []
    for a, b in itertools.combinations(clips, 2):
        score = prints[a.name].similarity(prints[b.name])
        (same if a.speaker == b.speaker else different).append((score, a.name, b.name))

    assert len(same) == 6
    assert len(different) == 60
    assert [pair for pair in same if pair[0] < THRESHOLD] == []
    assert [pair for pair in different if pair[0] >= THRESHOLD] == []


def test_a_print_is_a_unit_vector_made_the_same_every_time(clips: list[Clip], prints: dict[str, Voiceprint]) -> None:
    clip = clips[0]
    made = prints[clip.name]

    assert made.vector.shape == (DIMENSIONS,)
    assert made.vector.dtype == np.float32
    assert float(np.linalg.norm(made.vector)) == pytest.approx(1.0, abs=1e-6)
    assert made.similarity(made) == pytest.approx(1.0, abs=1e-6)
    again = voiceprint(clip.samples.copy(), clip.rate)
    assert again is not None
    assert again.to_bytes() == made.to_bytes()


def test_48_khz_stereo_of_a_clip_gives_its_print(clips: list[Clip], prints: dict[str, Voiceprint]) -> None:
    clip = clips[0]
    # Band-limited to what the 16 kHz clip holds, so the two are the same sound at two rates.
    at_48k = resample(clip.samples, clip.samples.size * 3).astype(np.float32)
    stereo = np.stack([at_48k, at_48k])

    made = voiceprint(stereo, 48000)

    assert made is not None
    # The int8 layers quantise each call's input on its own scale: a print moves by a few thousandths a value.
    assert made.similarity(prints[clip.name]) > 0.999
    assert np.max(np.abs(made.vector - prints[clip.name].vector)) < 0.01
    assert speech_seconds(stereo, 48000) == speech_seconds(clip.samples, clip.rate)


def test_silence_or_too_little_speech_gives_no_print(clips: list[Clip]) -> None:
    clip = clips[0]
    silence = np.zeros(3 * clip.rate, dtype=np.float32)
    assert voiceprint(silence, clip.rate) is None
    assert speech_seconds(silence, clip.rate) == 0.0
    quiet_noise = np.random.default_rng(7).normal(0.0, 1e-4, 3 * clip.rate).astype(np.float32)
    assert voiceprint(quiet_noise, clip.rate) is None

    # The clip's speech, cut down until the VAD keeps under the 1.2 s of one partial utterance.
    length = clip.rate
    while speech_seconds(clip.samples[:length], clip.rate) < 1.2:
        length += clip.rate // 10
    assert voiceprint(clip.samples[:length], clip.rate) is not None
    assert voiceprint(clip.samples[: length - clip.rate // 10], clip.rate) is None
    assert 0 < speech_seconds(clip.samples, clip.rate) <= clip.samples.size / clip.rate


@pytest.mark.parametrize(
    ("samples", "rate"),
    [
        (np.zeros(16000, dtype=np.int16), 16000),
        (np.zeros((1, 2, 16000), dtype=np.float32), 16000),
        (np.zeros(0, dtype=np.float32), 16000),
        (np.full(16000, np.nan, dtype=np.float32), 16000),
        (np.zeros(16000, dtype=np.float32), 0),
        (np.zeros(16000, dtype=np.float32), 16000.0),
    ],
    ids=["int16", "3-d", "empty", "nan", "rate-0", "rate-float"],
)
def test_samples_that_are_not_float_audio_are_refused(samples: np.ndarray, rate: int) -> None:
    with pytest.raises(ValueError, match=r"^(samples|rate) must"):
        voiceprint(samples, rate)


def test_a_print_survives_its_bytes_and_nothing_else_passes_for_one(prints: dict[str, Voiceprint]) -> None:
    made = next(iter(prints.values()))
    data = made.to_bytes()

    assert len(data) == 768
    assert data == made.vector.astype("<f4").tobytes()
    assert Voiceprint.from_bytes(data) == made
    assert hash(Voiceprint.from_bytes(data)) == hash(made)
    with pytest.raises(ValueError, match="768 bytes, not 764"):
        Voiceprint.from_bytes(data[:-4])
    with pytest.raises(ValueError, match="unit vector"):
        Voiceprint.from_bytes((made.vector * np.float32(2)).astype("<f4").tobytes())
    with pytest.raises(ValueError, match="unit vector"):
        Voiceprint.from_bytes(np.full(DIMENSIONS, np.nan, dtype="<f4").tobytes())
    with pytest.raises(ValueError, match="read-only"):
        made.vector[0] = 0.0
    with pytest.raises(AttributeError):
        made.extra = 1  # type: ignore[attr-defined]


def test_two_threads_at_once_make_the_prints_one_thread_makes(
    clips: list[Clip], prints: dict[str, Voiceprint], monkeypatch: pytest.MonkeyPatch
) -> None:
    # From a process that has not read the weights yet: both threads ask for them at the same moment.
    monkeypatch.setattr(network, "_encoder", None)
    loads = []
    read = weights.load

    def counted(path: object) -> object:
        loads.append(path)
        return read(path)  # type: ignore[arg-type]

    monkeypatch.setattr(weights, "load", counted)
    start = threading.Barrier(2)
    made: dict[int, dict[str, bytes]] = {0: {}, 1: {}}
    failed: list[BaseException] = []

    def work(index: int) -> None:
        try:
            start.wait(timeout=30)
            for clip in clips if index == 0 else reversed(clips):
                printed = voiceprint(clip.samples, clip.rate)
                made[index][clip.name] = b"" if printed is None else printed.to_bytes()
        except BaseException as exc:  # reported below, with the thread's results
            failed.append(exc)

    threads = [threading.Thread(target=work, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failed == []
    assert len(loads) == 1
    expected = {name: made_print.to_bytes() for name, made_print in prints.items()}
    assert made[0] == expected
    assert made[1] == expected
