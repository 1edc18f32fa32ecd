"""The speaker encoder's network in numpy, written from torch's LSTM equations: an implementation independent of
the ONNX graph voicegate runs (`backend.voiceprint.graph`, onnxruntime's own LSTM operator), to check that one
against and to measure beside it (bench/voiceprint.py).

All partials of an utterance run as one batch: each layer's input projection is one matrix product over every
frame of every partial, and each time step one (partials x 256) @ (256 x 1024) product, float32 throughout.
Gates are reordered to input, forget, output, cell, and the sigmoid gates' rows halved, so that one tanh serves
all four gates (sigmoid(x) = (1 + tanh(x / 2)) / 2).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from backend.voiceprint.graph import HIDDEN, LAYERS

F32 = npt.NDArray[np.float32]

#: torch's gate rows are (input, forget, cell, output); these are (input, forget, output, cell).
_GATE_ORDER: Final = np.r_[0 : 2 * HIDDEN, 3 * HIDDEN : 4 * HIDDEN, 2 * HIDDEN : 3 * HIDDEN]
_SIGMOID_ROWS: Final = 3 * HIDDEN


class NumpyEncoder:
    """The network with its weights laid out for the batched forward pass."""

    def __init__(self, tensors: dict[str, F32]) -> None:
        scale = np.ones(4 * HIDDEN, dtype=np.float32)
        scale[:_SIGMOID_ROWS] = 0.5
        self._layers = []
        for layer in range(LAYERS):
            w_in = tensors[f"lstm.weight_ih_l{layer}"][_GATE_ORDER] * scale[:, None]
            w_rec = tensors[f"lstm.weight_hh_l{layer}"][_GATE_ORDER] * scale[:, None]
            bias = (tensors[f"lstm.bias_ih_l{layer}"] + tensors[f"lstm.bias_hh_l{layer}"])[_GATE_ORDER] * scale
            self._layers.append((np.ascontiguousarray(w_in.T), np.ascontiguousarray(w_rec.T), bias.astype(np.float32)))
        self._linear = np.ascontiguousarray(tensors["linear.weight"].T)
        self._linear_bias = tensors["linear.bias"]

    def embed(self, mels: F32) -> F32:
        """The L2-normalised embeddings (batch, 256) of partial utterances ``mels`` (batch, frames, 40)."""
        batch, steps, _ = mels.shape
        sequence = np.ascontiguousarray(mels.transpose(1, 0, 2), dtype=np.float32)  # time first
        gates = np.empty((batch, 4 * HIDDEN), dtype=np.float32)
        input_cell = np.empty((batch, HIDDEN), dtype=np.float32)
        cell_tanh = np.empty((batch, HIDDEN), dtype=np.float32)
        hidden = np.zeros((batch, HIDDEN), dtype=np.float32)
        for index, (w_in, w_rec, bias) in enumerate(self._layers):
            projected = (sequence.reshape(steps * batch, -1) @ w_in).reshape(steps, batch, 4 * HIDDEN)
            projected += bias
            top = index == LAYERS - 1
            # The top layer's outputs are never read but its last: its steps reuse one row.
            outputs = np.empty((1 if top else steps, batch, HIDDEN), dtype=np.float32)
            hidden = np.zeros((batch, HIDDEN), dtype=np.float32)
            cell = np.zeros((batch, HIDDEN), dtype=np.float32)
            for step in range(steps):
                np.matmul(hidden, w_rec, out=gates)
                gates += projected[step]
                np.tanh(gates, out=gates)
                sigmoids = gates[:, :_SIGMOID_ROWS]
                sigmoids *= 0.5
                sigmoids += 0.5
                np.multiply(gates[:, :HIDDEN], gates[:, _SIGMOID_ROWS:], out=input_cell)
                cell *= gates[:, HIDDEN : 2 * HIDDEN]
                cell += input_cell
                np.tanh(cell, out=cell_tanh)
                hidden = outputs[0 if top else step]
                np.multiply(gates[:, 2 * HIDDEN : _SIGMOID_ROWS], cell_tanh, out=hidden)
            sequence = outputs
        embedded = np.maximum(hidden @ self._linear + self._linear_bias, 0.0)
        return np.asarray(embedded / np.linalg.norm(embedded, axis=1, keepdims=True), dtype=np.float32)
