"""Perth-Net's convolution stacks as ONNX graphs, written from the checkpoint's tensors at start-up for onnxruntime.

The encoder and each of the decoder's three branches is one stack over the 128 lowest bins of a normalised
log-magnitude spectrogram (channels = bins, time = frames):

    x (batch, 128, frames) -> Conv1d 128->256 (k 1) -> LeakyReLU -> 5 x [Conv1d 256->256 (k 7, padding 3) ->
    LeakyReLU] -> Conv1d 256->OUT (k 1) -> y (batch, OUT, frames)

OUT is 128 for the encoder (the residual added to those bins) and 2 for a decoder branch (attention, mark).
What lies around the stacks (the spectrogram, the mask of quiet frames, the decoder's time scaling, masked means
and softmax) is numpy in `backend.watermark.perth`: there it runs block by block over long audio with the same
results as over the whole, which a graph of the whole network could not (its interpolation spans the input).

Serialised here field by field as protobuf (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
ValueInfoProto of onnx.proto, IR version 8, opset 17), as backend/voiceprint/graph.py does, so that voicegate
needs no `onnx` package at run time: onnxruntime parses and checks it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Final

import numpy as np
import numpy.typing as npt

from backend.protobuf_wire import bytes_field as _bytes
from backend.protobuf_wire import int_field as _int
from backend.protobuf_wire import varint as _varint
from backend.watermark.weights import STACK_LAYERS

F32 = npt.NDArray[np.float32]

IR_VERSION: Final = 8
OPSET: Final = 17
INPUT: Final = "x"
OUTPUT: Final = "y"
SUBBAND: Final = 128
#: torch.nn.LeakyReLU's default negative slope, which Perth-Net's layers use.
LEAKY_SLOPE: Final = 0.01
#: Frames on each side that one output frame of a stack depends on: five kernels of 7, three frames each.
REACH: Final = 5 * 3
_FLOAT: Final = 1  # TensorProto.DataType.FLOAT
_ATTRIBUTE_FLOAT: Final = 1  # AttributeProto.AttributeType.FLOAT
_ATTRIBUTE_INTS: Final = 7  # AttributeProto.AttributeType.INTS


def _tensor(name: str, array: F32) -> bytes:
    """TensorProto of float32: dims (1), data_type (2), name (8), raw_data (9, little-endian)."""
    raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return b"".join(_int(1, dim) for dim in array.shape) + _int(2, _FLOAT) + _bytes(8, name) + _bytes(9, raw)


def _attribute(name: str, value: float | tuple[int, ...]) -> bytes:
    """AttributeProto: name (1), f (2, fixed32) or ints (8), type (20)."""
    if isinstance(value, tuple):
        return _bytes(1, name) + b"".join(_int(8, item) for item in value) + _int(20, _ATTRIBUTE_INTS)
    return _bytes(1, name) + _varint(2 << 3 | 5) + struct.pack("<f", value) + _int(20, _ATTRIBUTE_FLOAT)


def _node(op: str, inputs: Iterable[str], outputs: Iterable[str], **attributes: float | tuple[int, ...]) -> bytes:
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


def stack_graph(tensors: dict[str, F32], prefix: str) -> bytes:
    """A serialised ONNX ModelProto of the stack whose tensors are named ``prefix.N.conv.weight`` and ``.bias``
    in ``tensors`` (`backend.watermark.weights.load`'s): "encoder.layers", "decoder.slow_layers", ..."""
    nodes: list[bytes] = []
    initializers: list[bytes] = []
    current = INPUT
    for layer in range(STACK_LAYERS):
        weight, bias = tensors[f"{prefix}.{layer}.conv.weight"], tensors[f"{prefix}.{layer}.conv.bias"]
        kernel = weight.shape[2]
        initializers += [_tensor(f"w{layer}", weight), _tensor(f"b{layer}", bias)]
        last = layer == STACK_LAYERS - 1
        convolved = OUTPUT if last else f"c{layer}"
        pad = (kernel - 1) // 2
        nodes.append(
            _node("Conv", [current, f"w{layer}", f"b{layer}"], [convolved], kernel_shape=(kernel,), pads=(pad, pad))
        )
        if not last:
            current = f"a{layer}"
            nodes.append(_node("LeakyRelu", [convolved], [current], alpha=LEAKY_SLOPE))
    out = tensors[f"{prefix}.{STACK_LAYERS - 1}.conv.weight"].shape[0]
    graph = (
        b"".join(_bytes(1, node) for node in nodes)
        + _bytes(2, f"perth_net_{prefix.replace('.', '_')}")
        + b"".join(_bytes(5, tensor) for tensor in initializers)
        + _bytes(11, _value(INPUT, ["batch", SUBBAND, "frames"]))
        + _bytes(12, _value(OUTPUT, ["batch", out, "frames"]))
    )
    opset = _bytes(1, "") + _int(2, OPSET)
    return _int(1, IR_VERSION) + _bytes(2, "voicegate") + _bytes(7, graph) + _bytes(8, opset)
