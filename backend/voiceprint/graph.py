"""The speaker encoder's network, ECAPA-TDNN (Desplanques et al., arXiv:2005.07143) as SpeechBrain's
`spkrec-ecapa-voxceleb` builds it, as an ONNX graph written from its weights at start-up for onnxruntime.

fbanks (batch, frames, 80), mean-normalised log mel filterbanks -> a TDNN layer (kernel 5) -> three SE-Res2Net
blocks (kernel 3, dilations 2, 3 and 4; each a 1x1 layer, eight channel groups of 128 convolved in a cascade,
a 1x1 layer, squeeze-and-excitation over time, and a residual) -> their outputs concatenated, a 1x1 layer of
3072 -> attentive statistics pooling (attention over time with the utterance's mean and deviation as context;
the weighted mean and deviation) -> the embedding (192) -> L2 normalisation -> embeddings (batch, 192).

Every layer is a convolution, a ReLU, then a batch norm (in that order; eval mode: a per-channel scale and
shift). The graph is leaner than the network as trained, with the same arithmetic up to float rounding:

- the attention's first layer reads the frames beside the utterance's mean and deviation repeated over every
  frame (9216 channels); the two statistics' part of its product is one vector per utterance, so only the
  frames' part (3072 channels) is multiplied frame by frame;
- the pooled statistics' batch norm is folded into the embedding layer (a scale and shift before a linear map).

With ``quantized``, the 1x1 layers of 1024 channels and more (nine tenths of the multiplications) are
`MatMulInteger` on int8 weights (one scale per output channel) and activations quantised per call by
`DynamicQuantizeLinear`; the rest stays float32. docs/voiceprint.md has what each costs and changes.

The graph is serialised here as protobuf, field by field (the few messages of onnx.proto it needs), so that
voicegate needs no `onnx` package at run time: onnxruntime parses and checks it. Field numbers are onnx.proto's
(IR version 8, opset 17); the `onnx` package's checker accepted this graph with full shape inference.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import numpy as np
import numpy.typing as npt

from backend.protobuf_wire import bytes_field as _bytes
from backend.protobuf_wire import int_field as _int
from backend.protobuf_wire import varint as _varint
from backend.voiceprint.weights import AGGREGATED, BLOCKS, CHANNELS, EMBEDDING, MELS, RES2NET_SCALE

F32 = npt.NDArray[np.float32]

IR_VERSION: Final = 8
OPSET: Final = 17
INPUT: Final = "fbanks"
OUTPUT: Final = "embeddings"
#: SpeechBrain's BatchNorm1d epsilon, and its floor under the pooled deviations' variance.
BN_EPSILON: Final = 1e-5
STD_EPSILON: Final = 1e-12
_FLOAT: Final = 1  # TensorProto.DataType.FLOAT
_INT8: Final = 3
_INT64: Final = 7
_ATTRIBUTE_FLOAT: Final = 1  # AttributeProto.AttributeType
_ATTRIBUTE_INT: Final = 2
_ATTRIBUTE_STRING: Final = 3
_ATTRIBUTE_INTS: Final = 7
_DATA_TYPES: Final = {np.dtype(np.float32): _FLOAT, np.dtype(np.int8): _INT8, np.dtype(np.int64): _INT64}
#: Layers with at least this many input channels are quantised (with ``quantized``).
_QUANTISED_FROM: Final = CHANNELS

Attribute = int | float | str | tuple[int, ...]


def _tensor(name: str, array: npt.NDArray[np.generic]) -> bytes:
    """TensorProto: dims (1), data_type (2), name (8), raw_data (9, little-endian)."""
    raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    kind = _DATA_TYPES[array.dtype]
    return b"".join(_int(1, dim) for dim in array.shape) + _int(2, kind) + _bytes(8, name) + _bytes(9, raw)


def _attribute(name: str, value: Attribute) -> bytes:
    """AttributeProto: name (1), f (2), i (3), s (4) or ints (8), type (20)."""
    if isinstance(value, tuple):
        return _bytes(1, name) + b"".join(_int(8, item) for item in value) + _int(20, _ATTRIBUTE_INTS)
    if isinstance(value, str):
        return _bytes(1, name) + _bytes(4, value) + _int(20, _ATTRIBUTE_STRING)
    if isinstance(value, float):
        return _bytes(1, name) + _varint(2 << 3 | 5) + np.float32(value).tobytes() + _int(20, _ATTRIBUTE_FLOAT)
    return _bytes(1, name) + _int(3, value) + _int(20, _ATTRIBUTE_INT)


def _value(name: str, dims: Iterable[int | str]) -> bytes:
    """ValueInfoProto of a float tensor: name (1), type (2) > tensor_type (1) > elem_type (1), shape (2) > dim
    (1) > dim_value (1) or dim_param (2)."""
    shape = b"".join(_bytes(1, _bytes(2, dim) if isinstance(dim, str) else _int(1, dim)) for dim in dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, _int(1, _FLOAT) + _bytes(2, shape)))


class _Graph:
    """Nodes and initialisers, added in order, each output named uniquely."""

    def __init__(self, tensors: dict[str, F32], *, quantized: bool) -> None:
        self.tensors = tensors
        self.quantized = quantized
        self.nodes: list[bytes] = []
        self.initializers: list[bytes] = []
        self._names = 0

    def name(self, hint: str) -> str:
        self._names += 1
        return f"{hint}_{self._names}"

    def constant(self, hint: str, array: npt.NDArray[np.generic]) -> str:
        name = self.name(hint)
        self.initializers.append(_tensor(name, array))
        return name

    def node(self, op: str, inputs: Iterable[str], outputs: int = 1, /, **attributes: Attribute) -> list[str]:
        """NodeProto: input (1), output (2), op_type (4), attribute (5)."""
        names = [self.name(op.lower()) for _ in range(outputs)]
        self.nodes.append(
            b"".join(_bytes(1, name) for name in inputs)
            + b"".join(_bytes(2, name) for name in names)
            + _bytes(4, op)
            + b"".join(_bytes(5, _attribute(key, value)) for key, value in attributes.items())
        )
        return names

    def op(self, op: str, *inputs: str, **attributes: Attribute) -> str:
        return self.node(op, inputs, 1, **attributes)[0]

    def conv(self, x: str, weight: F32, bias: F32 | None, dilation: int = 1) -> str:
        """A SpeechBrain Conv1d: padded 'same' by reflection, then convolved (x: batch, channels, frames)."""
        _out, into, kernel = weight.shape
        if kernel == 1 and self.quantized and into >= _QUANTISED_FROM:
            return self._quantised_pointwise(x, weight[:, :, 0], bias)
        if kernel > 1:
            reach = dilation * (kernel - 1) // 2
            x = self.op("Pad", x, self.constant("pads", np.array([0, 0, reach, 0, 0, reach])), mode="reflect")
        inputs = [x, self.constant("w", weight)] + ([] if bias is None else [self.constant("b", bias)])
        return self.op("Conv", *inputs, dilations=(dilation,), kernel_shape=(kernel,))

    def _quantised_pointwise(self, x: str, weight: F32, bias: F32 | None) -> str:
        """A 1x1 convolution as int8 x int8 -> int32 products: the weights quantised symmetrically per output
        channel, the input per call (uint8, its own scale and zero point)."""
        scale = np.maximum(np.abs(weight).max(axis=1), 1e-12) / 127
        quantised = np.clip(np.round(weight / scale[:, None]), -127, 127).astype(np.int8)
        frames = self.op("Transpose", x, perm=(0, 2, 1))  # (batch, frames, channels)
        level, x_scale, zero = self.node("DynamicQuantizeLinear", [frames], 3)
        products = self.op("MatMulInteger", level, self.constant("wq", np.ascontiguousarray(quantised.T)), zero)
        scaled = self.op("Mul", self.op("Cast", products, to=_FLOAT), x_scale)
        y = self.op("Mul", scaled, self.constant("ws", scale.astype(np.float32)))
        if bias is not None:
            y = self.op("Add", y, self.constant("b", bias))
        return self.op("Transpose", y, perm=(0, 2, 1))

    def norm(self, x: str, prefix: str) -> str:
        """A batch norm in eval mode, as the per-channel scale and shift it is."""
        scale, shift = _batch_norm(self.tensors, prefix)
        return self.op(
            "Add", self.op("Mul", x, self.constant("scale", scale[:, None])), self.constant("shift", shift[:, None])
        )

    def tdnn(self, x: str, prefix: str, dilation: int = 1) -> str:
        """SpeechBrain's TDNNBlock: convolution, ReLU, batch norm."""
        t = self.tensors
        y = self.conv(x, t[f"{prefix}.conv.conv.weight"], t[f"{prefix}.conv.conv.bias"], dilation)
        return self.norm(self.op("Relu", y), f"{prefix}.norm.norm")

    def se_res2net(self, x: str, block: int, dilation: int) -> str:
        prefix = f"blocks.{block}"
        y = self.tdnn(x, f"{prefix}.tdnn1")
        width = CHANNELS // RES2NET_SCALE
        parts = self.node("Split", [y, self.constant("split", np.full(RES2NET_SCALE, width))], RES2NET_SCALE, axis=1)
        outputs = [parts[0]]
        for part in range(1, RES2NET_SCALE):
            into = parts[part] if part == 1 else self.op("Add", parts[part], outputs[-1])
            outputs.append(self.tdnn(into, f"{prefix}.res2net_block.blocks.{part - 1}", dilation))
        y = self.tdnn(self.op("Concat", *outputs, axis=1), f"{prefix}.tdnn2")
        t = self.tensors
        squeezed = self.op("ReduceMean", y, axes=(2,), keepdims=1)
        s = self.conv(squeezed, t[f"{prefix}.se_block.conv1.conv.weight"], t[f"{prefix}.se_block.conv1.conv.bias"])
        s = self.conv(
            self.op("Relu", s), t[f"{prefix}.se_block.conv2.conv.weight"], t[f"{prefix}.se_block.conv2.conv.bias"]
        )
        return self.op("Add", self.op("Mul", y, self.op("Sigmoid", s)), x)

    def statistics(self, x: str, weights: str | None) -> tuple[str, str]:
        """The mean and deviation over frames of ``x`` (batch, channels, frames), weighted by ``weights`` (the
        same shape, summing to 1 over frames) or uniform: (batch, channels, 1) each."""
        if weights is None:
            mean = self.op("ReduceMean", x, axes=(2,), keepdims=1)
            variance = self.op("ReduceMean", self.op("Mul", d := self.op("Sub", x, mean), d), axes=(2,), keepdims=1)
        else:
            axes = self.constant("axes", np.array([2]))
            mean = self.op("ReduceSum", self.op("Mul", x, weights), axes, keepdims=1)
            d = self.op("Sub", x, mean)
            variance = self.op("ReduceSum", self.op("Mul", self.op("Mul", d, d), weights), axes, keepdims=1)
        floor = self.constant("eps", np.array(STD_EPSILON, dtype=np.float32))
        return mean, self.op("Sqrt", self.op("Max", variance, floor))

    def pooling(self, x: str) -> str:
        """Attentive statistics pooling with global context: (batch, 6144), the weighted mean and deviation."""
        t = self.tensors
        weight = t["asp.tdnn.conv.conv.weight"][:, :, 0]
        frames, means, deviations = np.split(weight, 3, axis=1)
        mean, deviation = self.statistics(x, None)
        context = self.op(
            "Add",
            self.conv(mean, means[:, :, None], t["asp.tdnn.conv.conv.bias"]),
            self.conv(deviation, deviations[:, :, None], None),
        )
        attention = self.op("Add", self.conv(x, frames[:, :, None], None), context)
        attention = self.op("Tanh", self.norm(self.op("Relu", attention), "asp.tdnn.norm.norm"))
        attention = self.conv(attention, t["asp.conv.conv.weight"], t["asp.conv.conv.bias"])
        weighted_mean, weighted_deviation = self.statistics(x, self.op("Softmax", attention, axis=2))
        pooled = self.op("Concat", weighted_mean, weighted_deviation, axis=1)
        return self.op("Squeeze", pooled, self.constant("axes", np.array([2])))

    def embedding(self, pooled: str) -> str:
        """The pooled statistics' batch norm folded into the embedding layer; L2-normalised."""
        scale, shift = _batch_norm(self.tensors, "asp_bn.norm")
        weight = self.tensors["fc.conv.weight"][:, :, 0]
        folded = (weight * scale[None, :]).T.astype(np.float32)
        bias = (self.tensors["fc.conv.bias"] + weight @ shift).astype(np.float32)
        y = self.op("Add", self.op("MatMul", pooled, self.constant("fc", folded)), self.constant("fc_b", bias))
        return self.op("LpNormalization", y, axis=1, p=2)


def _batch_norm(tensors: dict[str, F32], prefix: str) -> tuple[F32, F32]:
    """A batch norm's eval-mode scale and shift per channel."""
    scale = tensors[f"{prefix}.weight"] / np.sqrt(tensors[f"{prefix}.running_var"].astype(np.float64) + BN_EPSILON)
    shift = tensors[f"{prefix}.bias"] - tensors[f"{prefix}.running_mean"] * scale
    return scale.astype(np.float32), shift.astype(np.float32)


def encoder_graph(tensors: dict[str, F32], *, quantized: bool = False) -> bytes:
    """A serialised ONNX ModelProto of the encoder with ``tensors`` (`backend.voiceprint.weights.load`'s)."""
    g = _Graph(tensors, quantized=quantized)
    x = g.tdnn(g.op("Transpose", INPUT, perm=(0, 2, 1)), "blocks.0")
    outputs = []
    for block, (_kernel, dilation) in enumerate(BLOCKS, start=1):
        x = g.se_res2net(x, block, dilation)
        outputs.append(x)
    aggregated = g.tdnn(g.op("Concat", *outputs, axis=1), "mfa")
    g.nodes.append(_bytes(1, g.embedding(g.pooling(aggregated))) + _bytes(2, OUTPUT) + _bytes(4, "Identity"))
    graph = (
        b"".join(_bytes(1, node) for node in g.nodes)
        + _bytes(2, "ecapa_tdnn_speaker_encoder")
        + b"".join(_bytes(5, tensor) for tensor in g.initializers)
        + _bytes(11, _value(INPUT, ["batch", "frames", MELS]))
        + _bytes(12, _value(OUTPUT, ["batch", EMBEDDING]))
    )
    opset = _bytes(1, "") + _int(2, OPSET)
    return _int(1, IR_VERSION) + _bytes(2, "voicegate") + _bytes(7, graph) + _bytes(8, opset)


__all__ = ["AGGREGATED", "INPUT", "OUTPUT", "encoder_graph"]
