"""The encoder as trained: its preprocessing as resemblyzer 0.1.4 does it, and its network as voicegate runs it
(an ONNX graph in onnxruntime) against an independent numpy LSTM written from torch's equations."""

from __future__ import annotations

import numpy as np
import pytest

from backend.voiceprint import features, weights
from backend.voiceprint.encoder import shared_encoder
from devkit.voiceprint_numpy import NumpyEncoder
from tests.unit.voiceprint.conftest import Clip

#: Samples that resemblyzer 0.1.4's own `preprocess_wav` (its audio.py, with librosa 0.11 and scipy's
#: binary_dilation) kept of each clip, run once outside the project (2026-11-26).
RESEMBLYZER_KEPT = {
    "1688-142285-0005": 57120,
    "1688-142285-0008": 56160,
    "1998-15444-0006": 85920,
    "1998-15444-0009": 107040,
    "2033-164914-0007": 54720,
    "2033-164914-0009": 91200,
    "2414-128291-0005": 133920,
    "2414-128291-0007": 88800,
    "367-130732-0007": 140640,
    "367-130732-0008": 60000,
    "533-1066-0008": 62880,
    "533-1066-0009": 39360,
}
#: Its `wav_to_mel_spectrogram` (librosa's melspectrogram) of 1688-142285-0005's kept samples, in the same run:
#: (frame, band) -> power, and the sum over all 358 frames.
RESEMBLYZER_MEL = {(10, 0): 0.0033840716, (100, 20): 5.757877e-05, (200, 39): 1.3809815e-05}
RESEMBLYZER_MEL_SUM = 949.352783203125


def test_the_vad_and_mel_frames_are_resemblyzers(clips: list[Clip]) -> None:
    kept = {clip.name: features.speech(features.mono_16k(clip.samples, clip.rate)) for clip in clips}
    assert {name: samples.size for name, samples in kept.items()} == RESEMBLYZER_KEPT

    mel = features.mel_frames(kept["1688-142285-0005"])
    assert mel.shape == (358, 40)
    assert {cell: float(mel[cell]) for cell in RESEMBLYZER_MEL} == pytest.approx(RESEMBLYZER_MEL, rel=1e-5)
    assert float(mel.sum(dtype=np.float64)) == pytest.approx(RESEMBLYZER_MEL_SUM, rel=1e-6)


@pytest.mark.parametrize(
    ("samples", "starts"),
    [
        (0, [0]),  # always one partial, zero-padded
        (25600, [0]),  # 1.6 s: a second partial would hold 52 % audio, under the 75 % it needs
        (31000, [0]),  # the second would hold 73 %
        (32000, [0, 77]),  # 77 %
        (48000, [0, 77, 154]),
    ],
)
def test_partial_utterances_start_every_77_frames_and_the_last_needs_three_quarters(
    samples: int, starts: list[int]
) -> None:
    assert features.partial_starts(samples) == starts


def test_the_onnx_graph_and_an_independent_numpy_lstm_agree(clips: list[Clip]) -> None:
    numpy_net = NumpyEncoder(weights.load(weights.locate()))
    for clip in clips[::4]:
        # Two partials of each: numpy's many small products are slow on a busy machine (OpenBLAS spins).
        batch = features.partials(features.speech(features.mono_16k(clip.samples, clip.rate)))[:2]
        assert batch.shape == (2, 160, 40)

        embedded = shared_encoder().embed(batch)

        assert embedded.shape == (batch.shape[0], 256)
        assert np.max(np.abs(embedded - numpy_net.embed(batch))) < 1e-5, clip.name


def test_each_partial_is_embedded_alone_whatever_its_batch(clips: list[Clip]) -> None:
    longest = max(clips, key=lambda clip: clip.samples.size)
    batch = features.partials(features.speech(features.mono_16k(longest.samples, longest.rate)))
    assert batch.shape[0] >= 3

    together = shared_encoder().embed(batch)
    alone = np.concatenate([shared_encoder().embed(batch[index : index + 1]) for index in range(batch.shape[0])])

    assert np.max(np.abs(together - alone)) < 1e-5
