"""A voiceprint: the speaker embedding of a recording, and how two are compared; and the embeddings of its
partial utterances, with where each lies in the recording (`SpeechPrints`, which `windows` judges)."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from backend.voiceprint import features
from backend.voiceprint.encoder import shared_encoder

F32 = npt.NDArray[np.float32]

DIMENSIONS: Final = 192
#: Cosine from which two voiceprints are taken for the same speaker: set on real speech, with held-out figures
#: in the package's docstring and docs/voiceprint.md.
THRESHOLD: Final = 0.39
#: Cosine from which a new consent reading or sample is taken for the voice of another account's print (the voice
#: ownership registry, `backend.records.ownership`): set by bench/ownership.py on real speech, between the highest
#: different-speaker and the lowest same-speaker score of an upload against an account's prints; docs/ownership.md.
OWNERSHIP_THRESHOLD: Final = 0.52
#: Cosine from which a new print and another account's are near-identical: the same voice, whatever a reading of the
#: new one shows (the same person's second account, or a copy of the other's own voice), so held for an operator
#: rather than settled by the uploader's reading. Set so that one person's second account is held 95 times in 100:
#: the tuning speakers' uploads against their own account, 5 % quantile 0.725, rounded down (bench/ownership.py);
#: no different-speaker pair measured reaches it (docs/ownership.md).
SAME_VOICE_THRESHOLD: Final = 0.72
_BYTES: Final = DIMENSIONS * 4
#: A stored print of GE2E, the encoder before ECAPA-TDNN (256 float32), which compares with no print of this one.
GE2E_BYTES: Final = 1024
#: A stored print's norm may differ from 1 by float32 rounding, never by more.
_NORM_TOLERANCE: Final = 1e-3
#: Bytes of one stored partial: the seconds it stands for (two float32) and its embedding as float16, which
#: moves a cosine by under 1e-3.
PARTIAL_BYTES: Final = 2 * 4 + DIMENSIONS * 2
_PARTIAL_RECORD: Final = np.dtype([("span", "<f4", 2), ("vector", "<f2", DIMENSIONS)])


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
        """Cosine similarity with ``other``, in [-1, 1] (different speakers score about 0.1, the same about 0.75)."""
        return min(1.0, max(-1.0, float(np.dot(self._vector, other._vector))))

    def to_bytes(self) -> bytes:
        """The vector as 768 bytes of little-endian float32 (how it is stored)."""
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


def stored_print(data: bytes | None) -> Voiceprint | None:
    """A stored print (`Voiceprint.to_bytes`'s bytes) as a Voiceprint; None for none, and for a print of GE2E, the
    encoder before ECAPA-TDNN, which waits to be printed again (backend/samples/reprint.py) and compares with
    nothing meanwhile. ValueError on bytes that are neither."""
    if data is None or len(data) == GE2E_BYTES:
        return None
    return Voiceprint.from_bytes(bytes(data))


def speech_seconds(samples: npt.NDArray[np.floating], rate: int) -> float:
    """Seconds of ``samples`` (float, mono ``(n,)`` or channels first ``(c, n)``, any rate) that the encoder's
    VAD keeps as speech (its pauses of up to 180 ms included): what a voiceprint is made of."""
    return features.speech(features.mono_16k(samples, rate)).size / features.RATE


class SpeechPrints:
    """The embeddings of a recording's partial utterances (unit vectors, in order), and the seconds of the
    recording each stands for: the speech half way to its neighbours' centres, the pauses the VAD cut put
    back, so that the partials tile the recording's speech in its own time. ``whole`` is the print of all of
    the speech at once, where it was made with them (not stored with them: `to_bytes` leaves it out)."""

    __slots__ = ("spans", "vectors", "whole")
    vectors: F32
    spans: npt.NDArray[np.float64]
    whole: Voiceprint | None

    def __init__(self, vectors: npt.ArrayLike, spans: npt.ArrayLike, whole: Voiceprint | None = None) -> None:
        matrix = np.array(vectors, dtype=np.float32)
        seconds = np.array(spans, dtype=np.float64)
        count = matrix.shape[0] if matrix.ndim == 2 else 0
        if count == 0 or matrix.shape != (count, DIMENSIONS) or seconds.shape != (count, 2):
            raise ValueError(f"speech prints are (n, {DIMENSIONS}) embeddings and (n, 2) spans, n > 0")
        if not (np.isfinite(matrix).all() and np.isfinite(seconds).all()):
            raise ValueError("speech prints must be finite")
        matrix.flags.writeable = seconds.flags.writeable = False
        object.__setattr__(self, "vectors", matrix)
        object.__setattr__(self, "spans", seconds)
        object.__setattr__(self, "whole", whole)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SpeechPrints cannot be changed")

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def voiceprint(self) -> Voiceprint | None:
        """The recording's voiceprint: ``whole`` where it was made with these prints (`speech_prints`), else the
        `mean_print` of the partials (stored prints)."""
        return self.whole if self.whole is not None else mean_print(self.vectors)

    def shifted(self, seconds: float) -> SpeechPrints:
        """These prints with their spans ``seconds`` later: of a recording cut from a longer one at
        ``seconds``, as they lie in the longer one."""
        return SpeechPrints(self.vectors, self.spans + seconds, self.whole)

    def to_bytes(self) -> bytes:
        """As stored: per partial its span (two little-endian float32 seconds), then its embedding (little-endian
        float16), `PARTIAL_BYTES` a partial."""
        record = np.zeros(len(self), dtype=_PARTIAL_RECORD)
        record["span"], record["vector"] = self.spans, self.vectors
        return record.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> SpeechPrints:
        """Prints from `to_bytes`'s output; ValueError on bytes that are not whole partials."""
        if not data or len(data) % PARTIAL_BYTES:
            raise ValueError(f"stored speech prints are whole partials of {PARTIAL_BYTES} bytes, not {len(data)}")
        record = np.frombuffer(data, dtype=_PARTIAL_RECORD)
        return cls(record["vector"], record["span"])


def mean_print(embeddings: npt.ArrayLike) -> Voiceprint | None:
    """The print of partial utterances' ``embeddings`` (n, 192): their mean, L2-normalised; None when that is
    zero."""
    mean = np.asarray(embeddings, dtype=np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return Voiceprint(mean / norm) if norm > 0 else None


def speech_prints(samples: npt.NDArray[np.floating], rate: int) -> SpeechPrints | None:
    """The partial utterances' embeddings of ``samples`` (as `voiceprint` takes them), with the seconds of
    ``samples`` each stands for, and the print of the whole speech (``whole``, the `voiceprint`). None when the
    VAD keeps under 1.2 s of speech. Raises as `voiceprint` does."""
    mono = features.mono_16k(samples, rate)
    kept, windows = features.kept_speech(mono)
    if kept.size < features.MIN_SPEECH_SAMPLES:
        return None
    encoder = shared_encoder()
    whole = _whole(mono)
    banks = features.fbanks(kept)
    frames = np.array(features.partial_starts(kept.size))
    embeddings = encoder.embed(features.partials(banks, frames.tolist()))
    # Each partial stands for the speech half way to its neighbours' centres; the first from the start of the
    # speech, the last to its end.
    starts = frames * features.HOP
    centres = (starts + np.minimum(starts + features.PARTIAL_FRAMES * features.HOP, kept.size)) / 2
    edges = np.concatenate([[0], np.round((centres[:-1] + centres[1:]) / 2), [kept.size]]).astype(np.intp)
    seconds = features.recording_seconds(edges, windows)
    return SpeechPrints(embeddings, np.stack([seconds[:-1], seconds[1:]], axis=1), whole)


def voiceprint(samples: npt.NDArray[np.floating], rate: int) -> Voiceprint | None:
    """The voiceprint of ``samples``: float mono ``(n,)`` or channels first ``(c, n)`` in [-1, 1], at any rate
    (resampled to 16 kHz here): the encoder's embedding of all of it, silences included (the VAD decides only
    whether it holds speech enough).

    None when the VAD keeps under 1.2 s of speech (see `speech_seconds`). Reads the weights on the first call;
    raises `VoiceprintUnavailable` when they are missing or not SpeechBrain's spkrec-ecapa-voxceleb, `ValueError`
    on samples of another shape or type, or not finite, or a rate that is not a positive int.
    """
    mono = features.mono_16k(samples, rate)
    return None if features.speech(mono).size < features.MIN_SPEECH_SAMPLES else _whole(mono)


def _whole(mono: F32) -> Voiceprint:
    """The print of all of ``mono``, silences included, as SpeechBrain's model reads a recording."""
    return Voiceprint(shared_encoder().embed(features.normalised(features.fbanks(mono))[None])[0])
