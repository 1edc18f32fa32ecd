"""The speaker encoder's network as an ONNX graph, written from its weights at start-up for onnxruntime.

mels (batch, 160, 40) -> three LSTM nodes (hidden 256) -> the top layer's last hidden state -> MatMul + Add
(the linear layer) -> Relu -> LpNormalization (L2) -> embeddings (batch, 256).

The graph is serialised here as protobuf, field by field (the few messages of onnx.proto it needs: ModelProto,
GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto), so that voicegate needs no `onnx` package
at run time: onnxruntime, already installed for the local voice, parses and checks it. Field numbers are
onnx.proto's (IR version 8, opset 17); the `onnx` package's checker accepted this graph with full shape
inference (onnx 1.23.2, 2026-11-26).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import numpy as np
import numpy.typing as npt

from backend.protobuf_wire import bytes_field as _bytes
from backend.protobuf_wire import int_field as _int

F32 = npt.NDArray[np.float32]

HIDDEN: Final = 256
LAYERS: Final = 3
FRAMES: Final = 160
MELS: Final = 40
IR_VERSION: Final = 8
OPSET: Final = 17
INPUT: Final = "mels"
OUTPUT: Final = "embeddings"
_FLOAT: Final = 1  # TensorProto.DataType.FLOAT
_INT64: Final = 7  # TensorProto.DataType.INT64
_ATTRIBUTE_INT: Final = 2  # AttributeProto.AttributeType.INT
_ATTRIBUTE_INTS: Final = 7  # AttributeProto.AttributeType.INTS
#: torch's LSTM gate rows are (input, forget, cell, output); ONNX's are (input, output, forget, cell).
_ONNX_GATES: Final = np.r_[0:HIDDEN, 3 * HIDDEN : 4 * HIDDEN, HIDDEN : 2 * HIDDEN, 2 * HIDDEN : 3 * HIDDEN]


def _tensor(name: str, array: npt.NDArray[np.float32] | npt.NDArray[np.int64]) -> bytes:
    """TensorProto: dims (1), data_type (2), name (8), raw_data (9, little-endian)."""
    kind = _FLOAT if array.dtype == np.float32 else _INT64
    raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    return b"".join(_int(1, dim) for dim in array.shape) + _int(2, kind) + _bytes(8, name) + _bytes(9, raw)


def _attribute(name: str, value: int | tuple[int, ...]) -> bytes:
    """AttributeProto: name (1), i (3) or ints (8), type (20)."""
    if isinstance(value, tuple):
        return _bytes(1, name) + b"".join(_int(8, item) for item in value) + _int(20, _ATTRIBUTE_INTS)
    return _bytes(1, name) + _int(3, value) + _int(20, _ATTRIBUTE_INT)


def _node(op: str, inputs: Iterable[str], outputs: Iterable[str], **attributes: int | tuple[int, ...]) -> bytes:
    """NodeProto: input (1), output (2), op_type (4), attribute (5)."""
    return (
        b"".join(_bytes(1, name) for name in inputs)
        + b"".join(_bytes(2, name) for name in outputs)
        + _bytes(4, op)
        + b"".join(_bytes(5, _attribute(key, value)) for key, value in attributes.items())
    )


def _value(name: str, dims: Iterable[int | str]) -> bytes:
    """ValueInfoProto of a float tensor: name (1), type (2) > tensor_type (1) > elem_type (1), shape (2) > dim
    (1) > dim_value (1) or dim_param (2)."""
    shape = b"".join(_bytes(1, _bytes(2, dim) if isinstance(dim, str) else _int(1, dim)) for dim in dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, _int(1, _FLOAT) + _bytes(2, shape)))


def encoder_graph(tensors: dict[str, F32]) -> bytes:
    """A serialised ONNX ModelProto of the encoder with ``tensors`` (`backend.voiceprint.weights.load`'s)."""
    nodes = [_node("Transpose", [INPUT], ["x0"], perm=(1, 0, 2))]  # time first, as ONNX's LSTM reads
    initializers = [_tensor("axis0", np.array([0], dtype=np.int64)), _tensor("axis1", np.array([1], dtype=np.int64))]
    for layer in range(LAYERS):
        w = tensors[f"lstm.weight_ih_l{layer}"][_ONNX_GATES]
        r = tensors[f"lstm.weight_hh_l{layer}"][_ONNX_GATES]
        biases = (tensors[f"lstm.bias_ih_l{layer}"][_ONNX_GATES], tensors[f"lstm.bias_hh_l{layer}"][_ONNX_GATES])
        initializers += [
            _tensor(f"w{layer}", w[None]),
            _tensor(f"r{layer}", r[None]),
            _tensor(f"b{layer}", np.concatenate(biases)[None]),
        ]
        if layer < LAYERS - 1:
            nodes.append(
                _node("LSTM", [f"x{layer}", f"w{layer}", f"r{layer}", f"b{layer}"], [f"y{layer}"], hidden_size=HIDDEN)
            )
            # Y is (time, directions, batch, hidden): the one direction's axis goes.
            nodes.append(_node("Squeeze", [f"y{layer}", "axis1"], [f"x{layer + 1}"]))
        else:
            nodes.append(
                _node("LSTM", [f"x{layer}", f"w{layer}", f"r{layer}", f"b{layer}"], ["", "h"], hidden_size=HIDDEN)
            )
    initializers += [
        _tensor("linear_w", tensors["linear.weight"].T),
        _tensor("linear_b", tensors["linear.bias"]),
    ]
    nodes += [
        _node("Squeeze", ["h", "axis0"], ["last"]),
        _node("MatMul", ["last", "linear_w"], ["projected"]),
        _node("Add", ["projected", "linear_b"], ["biased"]),
        _node("Relu", ["biased"], ["positive"]),
        _node("LpNormalization", ["positive"], [OUTPUT], axis=1, p=2),
    ]
    graph = (
        b"".join(_bytes(1, node) for node in nodes)
        + _bytes(2, "ge2e_speaker_encoder")
        + b"".join(_bytes(5, tensor) for tensor in initializers)
        + _bytes(11, _value(INPUT, ["batch", FRAMES, MELS]))
        + _bytes(12, _value(OUTPUT, ["batch", HIDDEN]))
    )
    opset = _bytes(1, "") + _int(2, OPSET)
    return _int(1, IR_VERSION) + _bytes(2, "voicegate") + _bytes(7, graph) + _bytes(8, opset)
