"""GE2E (Wan et al., arXiv:1710.10467) with Resemble AI's weights: voicegate's speaker encoder before ECAPA-TDNN,
kept for bench/voiceprint.py to print today's figures beside it on the same speakers. Its preprocessing
(`features`: 16 kHz, -30 dBFS, WebRTC VAD, 40-band power mel frames in partial utterances of 1.6 s), its weights
read without torch from the resemblyzer 0.1.4 wheel (`weights.from_wheel`), its 3-layer LSTM as an ONNX graph
(`graph`) run by onnxruntime on one thread; a print is the mean of its partials' 256-value embeddings,
L2-normalised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime

from devkit.ge2e import features, graph, weights

F32 = npt.NDArray[np.float32]


class GE2E:
    """The network in an onnxruntime session on one thread."""

    def __init__(self, wheel: Path) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            graph.encoder_graph(weights.from_wheel(wheel)), options, providers=["CPUExecutionProvider"]
        )

    def voiceprint(self, samples: F32) -> F32 | None:
        """The print of 16 kHz mono ``samples``; None under 1.2 s of speech."""
        kept = features.speech(samples)
        if kept.size < features.MIN_SPEECH_SAMPLES:
            return None
        (embeddings,) = self._session.run([graph.OUTPUT], {graph.INPUT: features.partials(kept)})
        mean = np.asarray(embeddings, dtype=np.float32).mean(axis=0)
        return np.asarray(mean / np.linalg.norm(mean), dtype=np.float32)
