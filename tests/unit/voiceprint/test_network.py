"""The encoder as trained: voicegate's filterbanks and ONNX graph (float32, and int8 as it runs) against SpeechBrain's
own ECAPA-TDNN on the same checkpoint and the same clips. The reference prints were made once under torch, outside
voicegate's environment (bench/voiceprint_reference.py, SpeechBrain 1.1.2 and torch 2.13.0, 2026-11-28), and are
kept in reference_prints.json: no test runs torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from backend.voiceprint import features, weights
from backend.voiceprint.encoder import Encoder, shared_encoder
from tests.unit.voiceprint.conftest import Clip

REFERENCE = json.loads((Path(__file__).with_name("reference_prints.json")).read_text())
#: Measured on the 12 clips (2026-11-28): the float32 graph's largest element difference from the reference, and
#: the int8 graph's (as voicegate runs it) largest element difference and lowest cosine.
FLOAT_MAX_DIFFERENCE = 6.8e-7
INT8_MAX_DIFFERENCE = 0.0165
INT8_MIN_COSINE = 0.9968


@pytest.fixture(scope="module")
def tensors() -> dict[str, npt.NDArray[np.float32]]:
    """The checkpoint's tensors."""
    return weights.load(weights.locate())


def embedded(encoder: Encoder, clip: Clip) -> npt.NDArray[np.float32]:
    """The encoder's print of all of ``clip`` (no VAD: the reference's input)."""
    return encoder.embed(features.normalised(features.fbanks(clip.samples))[None])[0]


def test_the_reference_was_made_by_speechbrain_on_every_clip(clips: list[Clip]) -> None:
    assert (REFERENCE["speechbrain"], REFERENCE["torch"]) == ("1.1.2", "2.13.0+cpu")
    assert sorted(REFERENCE["prints"]) == [clip.name for clip in clips]


def test_the_float32_graph_gives_speechbrains_prints(
    clips: list[Clip], tensors: dict[str, npt.NDArray[np.float32]]
) -> None:
    encoder = Encoder(tensors, quantized=False)
    worst = max(float(np.max(np.abs(embedded(encoder, c) - REFERENCE["prints"][c.name]))) for c in clips)
    assert worst <= 2 * FLOAT_MAX_DIFFERENCE, worst


def test_the_int8_graph_voicegate_runs_stays_within_its_measured_distance(clips: list[Clip]) -> None:
    reference = {c.name: np.array(REFERENCE["prints"][c.name]) for c in clips}
    made = {c.name: embedded(shared_encoder(), c) for c in clips}
    assert max(float(np.max(np.abs(made[n] - reference[n]))) for n in made) <= INT8_MAX_DIFFERENCE + 1e-4
    assert min(float(made[n] @ reference[n]) for n in made) >= INT8_MIN_COSINE - 1e-4


def test_the_filterbanks_floor_clip_and_centre_as_speechbrains() -> None:
    silence_then_tone = np.concatenate([np.zeros(8000), 0.5 * np.sin(np.arange(8000) * 2 * np.pi * 440 / 16000)])
    banks = features.fbanks(silence_then_tone.astype(np.float32))
    assert banks.shape == (101, 80)  # a frame centred on every 160 samples, the first on the first
    assert banks.min() == pytest.approx(-100.0)  # 1e-10, in dB
    normalised = features.normalised(banks)
    assert normalised.dtype == np.float32
    assert np.abs(normalised.mean(axis=0)).max() < 1e-4
    # The silence, floored at -100 dB, is clipped to 80 dB under the loudest value: every silent frame the same.
    clipped = np.maximum(banks, banks.max() - 80.0)
    assert np.array_equal(normalised, (clipped - clipped.mean(axis=0)).astype(np.float32))
    assert (clipped[5:45] == banks.max() - 80.0).all()


@pytest.mark.parametrize(
    ("samples", "starts"),
    [
        (0, [0]),  # always one, of every frame there is
        (25440, [0]),  # 160 frames exactly
        (27040, [0, 10]),  # 170 frames: the last moved back to end with them
        (37760, [0, 77]),  # 237
        (48000, [0, 77, 141]),
    ],
)
def test_partial_utterances_start_every_77_frames_and_the_last_ends_with_the_speech(
    samples: int, starts: list[int]
) -> None:
    assert features.partial_starts(samples) == starts


def test_each_partial_is_embedded_alone_whatever_its_batch(clips: list[Clip]) -> None:
    longest = max(clips, key=lambda clip: clip.samples.size)
    kept = features.speech(features.mono_16k(longest.samples, longest.rate))
    batch = features.partials(features.fbanks(kept), features.partial_starts(kept.size))
    assert batch.shape[0] >= 3
    assert batch.shape[1:] == (160, 80)

    together = shared_encoder().embed(batch)
    alone = np.concatenate([shared_encoder().embed(batch[index : index + 1]) for index in range(batch.shape[0])])

    assert together.shape == (batch.shape[0], 192)
    assert np.array_equal(together, alone)
