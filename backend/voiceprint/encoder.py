"""The GE2E speaker encoder's network run by onnxruntime: a 3-layer LSTM (hidden 256) over partial utterances
of mel frames, its top layer's last hidden state through a linear layer, a ReLU and an L2 normalisation.

All partials of an utterance run as one batch, on the calling thread alone (one intra-op thread, like the
local voice: the API and the workers share the cores, and the fair CPU executor gives each piece of work one).
onnxruntime's `InferenceSession.run` may be called from several threads at once.

Not numpy: the same batched network in numpy (devkit/voiceprint_numpy.py) costs more than twice the CPU, and
its small matrix products go to OpenBLAS, whose worker threads spin on a busy machine (docs/voiceprint.md has
the figures).
"""

from __future__ import annotations

import threading
from typing import Final

import numpy as np
import numpy.typing as npt
import onnxruntime

from backend.errors import VoiceprintUnavailable
from backend.settings import SettingsError
from backend.voiceprint import graph, weights

F32 = npt.NDArray[np.float32]

THREADS: Final = 1


class Encoder:
    """The network in an onnxruntime session."""

    def __init__(self, tensors: dict[str, F32]) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = THREADS
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self._session = onnxruntime.InferenceSession(
            graph.encoder_graph(tensors), options, providers=["CPUExecutionProvider"]
        )

    def embed(self, mels: F32) -> F32:
        """The L2-normalised embeddings (batch, 256) of partial utterances ``mels`` (batch, 160, 40)."""
        feed = {graph.INPUT: np.ascontiguousarray(mels, dtype=np.float32)}
        (embeddings,) = self._session.run([graph.OUTPUT], feed)
        return np.asarray(embeddings, dtype=np.float32)


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
            f"the speaker encoder cannot run ({exc.detail}): install its weights, the resemblyzer 0.1.4 wheel"
            " (Apache-2.0) without its dependencies: pip install --no-deps --only-binary=:all: --require-hashes"
            " -r requirements/weights.lock (`make up` and `make test` do)"
        ) from None
