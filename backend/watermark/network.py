"""Perth-Net's four convolution stacks (the encoder's, the decoder's three) in onnxruntime sessions, one per
process, on one intra-op thread each like the speaker encoder: the API and the workers share the cores, and the
fair CPU executor gives each piece of work one. `InferenceSession.run` may be called from several threads at
once."""

from __future__ import annotations

import threading
from typing import Final

import numpy as np
import numpy.typing as npt
import onnxruntime

from backend.errors import SettingsError, WatermarkUnavailable
from backend.watermark import graph, weights

F32 = npt.NDArray[np.float32]

THREADS: Final = 1
ENCODER: Final = "encoder.layers"
DECODERS: Final = ("decoder.slow_layers", "decoder.normal_layers", "decoder.fast_layers")


class _Stack:
    """One stack in its session: called with (128, frames) float32, answers (channels, frames) float32; or with a
    batch of equally long inputs (n, 128, frames), answers (n, channels, frames)."""

    def __init__(self, tensors: dict[str, F32], prefix: str) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = THREADS
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self._session = onnxruntime.InferenceSession(
            graph.stack_graph(tensors, prefix), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, features: F32) -> F32:
        single = features.ndim == 2
        feed = {graph.INPUT: np.ascontiguousarray(features[None] if single else features, dtype=np.float32)}
        (out,) = self._session.run([graph.OUTPUT], feed)
        return np.asarray(out[0] if single else out, dtype=np.float32)


class Network:
    """The encoder's stack and the decoder's three (slow, normal, fast)."""

    def __init__(self, tensors: dict[str, F32]) -> None:
        self.encoder = _Stack(tensors, ENCODER)
        slow, normal, fast = (_Stack(tensors, prefix) for prefix in DECODERS)
        self.decoders = (slow, normal, fast)


_lock = threading.Lock()
_network: Network | None = None


def shared_network() -> Network:
    """The process's network, its weights read on first use (once, whichever thread asks first)."""
    global _network  # noqa: PLW0603 - the one copy per process, made lazily
    if _network is None:
        with _lock:
            if _network is None:
                _network = Network(weights.load(weights.locate()))
    return _network


def use_watermark() -> None:
    """Load the network now, at start-up (`voicegate up`, `serve`, `worker`), so that a process that could not mark
    what it synthesizes refuses to start (SettingsError, one line naming what to install) instead of failing
    every render."""
    try:
        shared_network()
    except WatermarkUnavailable as exc:
        raise SettingsError(
            f"the audio watermark cannot run ({exc.detail}): install its weights, the resemble-perth 1.0.1 wheel"
            " (MIT) without its dependencies: pip install --no-deps --only-binary=:all: --require-hashes"
            " -r requirements/weights.lock (`make up` and `make test` do)"
        ) from None
