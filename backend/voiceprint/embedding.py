"""A voiceprint: the speaker embedding of a recording, and how two are compared."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from backend.voiceprint import features
from backend.voiceprint.encoder import shared_encoder

F32 = npt.NDArray[np.float32]

DIMENSIONS: Final = 256
#: Cosine from which two voiceprints are taken for the same speaker: set on real speech, with held-out figures
#: in the package's docstring and docs/voiceprint.md.
THRESHOLD: Final = 0.74
_BYTES: Final = DIMENSIONS * 4
#: A stored print's norm may differ from 1 by float32 rounding, never by more.
_NORM_TOLERANCE: Final = 1e-3


class Voiceprint:
    """An L2-normalised float32 vector of ``DIMENSIONS``: the speaker embedding of one recording."""

    __slots__ = ("_vector",)
    _vector: F32

    def __init__(self, vector: npt.ArrayLike) -> None:
        array = np.array(vector, dtype=np.float32)
        norm = float(np.linalg.norm(array)) if array.shape == (DIMENSIONS,) and np.isfinite(array).all() else math.nan
        if not abs(norm - 1.0) <= _NORM_TOLERANCE:
            raise ValueError(f"a voiceprint is a finite unit vector of {DIMENSIONS} values")
        array.flags.writeable = False
        object.__setattr__(self, "_vector", array)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Voiceprint cannot be changed")

    @property
    def vector(self) -> F32:
        """The embedding (read-only)."""
        return self._vector

    def similarity(self, other: Voiceprint) -> float:
        """Cosine similarity with ``other``, in [-1, 1] (GE2E prints are non-negative, so in practice [0, 1])."""
        return min(1.0, max(-1.0, float(np.dot(self._vector, other._vector))))

    def to_bytes(self) -> bytes:
        """The vector as 1024 bytes of little-endian float32 (how it is stored)."""
        return self._vector.astype("<f4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Voiceprint:
        """A voiceprint from `to_bytes`'s output; ValueError on another length or a vector that is not one."""
        if len(data) != _BYTES:
            raise ValueError(f"a voiceprint is {_BYTES} bytes, not {len(data)}")
        return cls(np.frombuffer(data, dtype="<f4"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Voiceprint) and bool(np.array_equal(self._vector, other._vector))

    def __hash__(self) -> int:
        return hash(self._vector.tobytes())

    def __repr__(self) -> str:
        return f"Voiceprint({np.array2string(self._vector[:4], precision=3)[:-1]} ...])"


def speech_seconds(samples: npt.NDArray[np.floating], rate: int) -> float:
    """Seconds of ``samples`` (float, mono ``(n,)`` or channels first ``(c, n)``, any rate) that the encoder's
    VAD keeps as speech (its pauses of up to 180 ms included): what a voiceprint is made of."""
    return features.speech(features.mono_16k(samples, rate)).size / features.RATE


def voiceprint(samples: npt.NDArray[np.floating], rate: int) -> Voiceprint | None:
    """The voiceprint of ``samples``: float mono ``(n,)`` or channels first ``(c, n)`` in [-1, 1], at any rate
    (resampled to 16 kHz here).

    None when the VAD keeps too little speech for one partial utterance: under 1.2 s (three quarters of a
    1.6 s partial; see `speech_seconds`). Reads the weights on the first call; raises `VoiceprintUnavailable`
    when they are missing or not resemblyzer 0.1.4's, `ValueError` on samples of another shape or type, or
    not finite, or a rate that is not a positive int.
    """
    kept = features.speech(features.mono_16k(samples, rate))
    if kept.size < features.MIN_SPEECH_SAMPLES:
        return None
    partials = shared_encoder().embed(features.partials(kept))
    mean = partials.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    # Every partial's ReLU all off: nothing of a voice to compare.
    return Voiceprint(mean / norm) if norm > 0 else None
