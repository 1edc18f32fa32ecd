"""Whisper base's text decoder, run in numpy over every token of a forced phrase at once.

A consent check forces the phrase: it reads the decoder's logits at each of the phrase's tokens, given the recording
and the tokens before it, and never lets the decoder choose a token. CTranslate2's `generate` runs forced tokens as
it runs chosen ones, one decoder step each (4.8.5 runs only the special tokens before ``<|notimestamps|>`` in one
pass), and has no call that returns the logits of a forced sequence in one pass (`align` returns each forced
token's probability alone). Each step is a pass over the decoder's weights for one token, and the phrase's 40-130
tokens, twice (``Whisper.hear``), cost as much CPU as the encoder on a long reading, or twice as much. Here the
logits come from one forward pass over all of a hearing's tokens, a matrix product per weight for all of them at
once: the same logits (within 7.5e-5 of CTranslate2's `generate` in float32 on a Spanish reading; the test holds
them within 1e-3), at about a third of `generate`'s CPU on one core (0.34-0.42 times, for phrases of 45-123 tokens
read in 10-28 s).

The weights are the decoder's variables in CTranslate2's ``model.bin`` (its binary format, version 6: a header,
then each variable's name, shape, type and bytes, then aliases; ``variables``): the file's float16, held in float32
(about 200 MB more resident; CTranslate2 loads the whole model, its own int8 decoder too). float32 is closer to
Whisper as trained than CTranslate2's int8, whose model (encoder and decoder) put a Spanish reading's tokens up to
0.5 nats from float32's. The decoder is Whisper's: token and learned position embeddings; per layer, layer-normed
self-attention (causal), attention to the encoded recording, and a GELU feed-forward, each added to its input; a
last layer norm; the logits against the token embeddings.

numpy's matrix products run on its BLAS library with the threads the process has: one, as the `voicegate` package
sets it unless the operator says otherwise (voicegate/__init__.py), so that a hearing on the CPU executor takes one
core, as CTranslate2 is told to (``intra_threads=1``), and leaves the others to the event loop.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NamedTuple

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

F32 = npt.NDArray[np.float32]

#: CTranslate2's binary format this reads (``model.bin``'s first four bytes).
BINARY_VERSION: Final = 6
#: CTranslate2's types, by their number in the file (include/ctranslate2/types.h).
_TYPES: Final = (np.float32, np.int8, np.int16, np.int32, np.float16)
#: CTranslate2's number for the exact (erf) GELU, the activation Whisper's feed-forward layers use.
_GELU: Final = 3
_EPSILON: Final = 1e-5


class ModelFormatError(ValueError):
    """A ``model.bin`` this does not read: another format version, or not Whisper's decoder."""


def variables(model_bin: bytes) -> dict[str, npt.NDArray[np.generic]]:
    """Every variable in ``model_bin`` (CTranslate2's format), by name, aliases included, as arrays over its bytes."""
    version = int.from_bytes(model_bin[:4], "little")
    if version != BINARY_VERSION:
        raise ModelFormatError(f"model.bin is CTranslate2's format {version}; this reads {BINARY_VERSION}")
    view = memoryview(model_bin)
    offset = 4

    def take(form: str) -> int:
        nonlocal offset
        (value,) = struct.unpack_from(form, view, offset)
        offset += struct.calcsize(form)
        return int(value)

    def text() -> str:
        nonlocal offset
        length = take("<H")
        value = bytes(view[offset : offset + length - 1]).decode("utf-8")
        offset += length
        return value

    try:
        text()  # the model's spec, e.g. WhisperSpec
        take("<I")  # the spec's revision
        found: dict[str, npt.NDArray[np.generic]] = {}
        for _ in range(take("<I")):
            name = text()
            shape = [take("<I") for _ in range(take("<B"))]
            kind = np.dtype(_TYPES[take("<B")])
            size = take("<I")
            found[name] = np.frombuffer(view, kind, size // kind.itemsize, offset).reshape(shape)
            offset += size
        for _ in range(take("<I")):
            alias = text()
            found[alias] = found[text()]
    except (struct.error, IndexError, KeyError, ValueError) as exc:
        raise ModelFormatError(f"model.bin ends or breaks at byte {offset}: {exc!r}") from exc
    return found


class Branch(NamedTuple):
    """Tokens heard in place of a sequence's from its index ``at`` on (``Decoder.branched``)."""

    sequence: int
    at: int
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class _Layer:
    norms: tuple[tuple[F32, F32], tuple[F32, F32], tuple[F32, F32]]
    #: Self-attention's query, key and value projections fused (1536, 512), and its output's.
    fused: tuple[F32, F32]
    out: tuple[F32, F32]
    #: Attention to the recording: the query's projection; the key's and value's fused (1024, 512); the output's.
    query: tuple[F32, F32]
    keys_values: tuple[F32, F32]
    attended: tuple[F32, F32]
    up: tuple[F32, F32]
    down: tuple[F32, F32]


class Decoder:
    """The decoder's weights, float32, read-only: thread-safe, any number of hearings at once."""

    def __init__(self, found: Mapping[str, npt.NDArray[np.generic]]) -> None:
        def f32(name: str) -> F32:
            return np.array(found[name], dtype=np.float32)  # a copy: the file's bytes are let go

        def linear(name: str) -> tuple[F32, F32]:
            return f32(f"{name}/weight"), f32(f"{name}/bias")

        def norm(name: str) -> tuple[F32, F32]:
            return f32(f"{name}/gamma"), f32(f"{name}/beta")

        settings = {name: int(found[f"decoder/{name}"]) for name in ("activation", "pre_norm", "scale_embeddings")}
        if settings != {"activation": _GELU, "pre_norm": 1, "scale_embeddings": 0}:
            raise ModelFormatError(f"model.bin's decoder is not Whisper's: {settings}")
        self._heads = int(found["decoder/num_heads"])
        self._embeddings = f32("decoder/embeddings/weight")
        self._positions = f32("decoder/position_encodings/encodings")
        self._norm = norm("decoder/layer_norm")
        self._layers: list[_Layer] = []
        while f"decoder/layer_{len(self._layers)}/ffn/linear_0/weight" in found:
            at = f"decoder/layer_{len(self._layers)}"
            self._layers.append(
                _Layer(
                    norms=(
                        norm(f"{at}/self_attention/layer_norm"),
                        norm(f"{at}/attention/layer_norm"),
                        norm(f"{at}/ffn/layer_norm"),
                    ),
                    fused=linear(f"{at}/self_attention/linear_0"),
                    out=linear(f"{at}/self_attention/linear_1"),
                    query=linear(f"{at}/attention/linear_0"),
                    keys_values=linear(f"{at}/attention/linear_1"),
                    attended=linear(f"{at}/attention/linear_2"),
                    up=linear(f"{at}/ffn/linear_0"),
                    down=linear(f"{at}/ffn/linear_1"),
                )
            )
        if not self._layers:
            raise ModelFormatError("model.bin holds no decoder layers")

    @classmethod
    def from_model_bin(cls, model_bin: bytes) -> Decoder:
        """The decoder in ``model_bin`` (CTranslate2's format)."""
        return cls(variables(model_bin))

    @property
    def positions(self) -> int:
        """The most tokens a sequence may hold (Whisper's decoder: 448)."""
        return len(self._positions)

    def logits(self, encoded: F32, sequences: Sequence[Sequence[int]], first: Sequence[int]) -> F32:
        """For each of ``sequences`` (token ids) heard against ``encoded`` (the encoder's output for one recording,
        (frames, 512)), the logits after each of its tokens from index ``first[i]`` on, as many for each:
        (sequences, rows, vocabulary), where row j says how likely each token is at index ``first[i] + j + 1``,
        given the recording and the tokens up to it. The sequences go through the layers together, each attending
        to its own tokens alone."""
        return self.branched(encoded, sequences, first, ())[0]

    def branched(
        self, encoded: F32, sequences: Sequence[Sequence[int]], first: Sequence[int], branches: Sequence[Branch]
    ) -> tuple[F32, F32]:
        """``logits``, and the logits after each token of each of ``branches`` (a row per token, all the branches'
        in their order: (tokens, vocabulary)): how likely each token is after it, had its sequence said the
        branch's tokens from its index ``at`` on. A branch's tokens go through the layers with the sequences',
        attending to their sequence's tokens before ``at`` and to the branch's own: the cost of a token each, where
        a sequence of its own would cost all of its sequence's tokens again."""
        from scipy.special import erf  # noqa: PLC0415 - on first use: English alone never hears through Whisper

        lengths = [len(sequence) for sequence in sequences]
        if max(lengths) > self.positions:
            raise ValueError(f"a sequence of {max(lengths)} tokens; Whisper's decoder takes {self.positions}")
        if len({length - begin for length, begin in zip(lengths, first, strict=True)}) != 1:
            raise ValueError("the sequences must ask for as many rows each")
        for branch in branches:
            if not (0 < branch.at <= lengths[branch.sequence] and branch.at + len(branch.tokens) <= self.positions):
                raise ValueError(f"a branch at {branch.at} of a sequence of {lengths[branch.sequence]} tokens")
        tokens = np.concatenate(
            [np.asarray(sequence, dtype=np.int64) for sequence in sequences]
            + [np.asarray(branch.tokens, dtype=np.int64) for branch in branches]
        )
        # Each token's sequence, position, and branch (-1 for a sequence's own); and how far back it may look
        # into its sequence's own tokens: to its own position, or a branch's to the one before it branches.
        owner = np.concatenate(
            [np.repeat(np.arange(len(lengths)), lengths)]
            + [np.full(len(branch.tokens), branch.sequence) for branch in branches]
        )
        position = np.concatenate(
            [np.arange(length) for length in lengths]
            + [np.arange(branch.at, branch.at + len(branch.tokens)) for branch in branches]
        )
        branch_of = np.concatenate(
            [np.full(sum(lengths), -1)] + [np.full(len(branch.tokens), index) for index, branch in enumerate(branches)]
        )
        reach = np.concatenate(
            [np.arange(length) for length in lengths]
            + [np.full(len(branch.tokens), branch.at - 1) for branch in branches]
        )
        x = self._embeddings[tokens] + self._positions[position]
        # Causal within each sequence, nothing across them; a branch sees its sequence up to where it branches,
        # and itself, causally: -inf elsewhere.
        own = (branch_of[None, :] == -1) & (owner[None, :] == owner[:, None]) & (position[None, :] <= reach[:, None])
        same_branch = (branch_of[None, :] >= 0) & (branch_of[None, :] == branch_of[:, None])
        mask = np.where(own | (same_branch & (position[None, :] <= position[:, None])), 0, -np.inf)
        mask = mask.astype(np.float32)
        for layer in self._layers:
            keys, values = np.split(_affine(encoded, layer.keys_values), 2, axis=1)
            q, k, v = np.split(_affine(_layer_norm(x, layer.norms[0]), layer.fused), 3, axis=1)
            x = x + _affine(self._attend(q, k, v, mask), layer.out)
            q = _affine(_layer_norm(x, layer.norms[1]), layer.query)
            x = x + _affine(self._attend(q, keys, values, None), layer.attended)
            up = _affine(_layer_norm(x, layer.norms[2]), layer.up)
            x = x + _affine(up * (0.5 + 0.5 * erf(up * np.float32(np.sqrt(0.5)))), layer.down)
        starts = np.cumsum([0, *lengths[:-1]])
        rows = np.concatenate(
            [
                np.arange(start + begin, start + length)
                for start, begin, length in zip(starts, first, lengths, strict=True)
            ]
            + [np.arange(sum(lengths), len(tokens))]
        )
        out = _layer_norm(x[rows], self._norm) @ self._embeddings.T
        main = sum(lengths) - sum(first)
        return out[:main].reshape(len(sequences), -1, len(self._embeddings)), out[main:]

    def _attend(self, q: F32, k: F32, v: F32, mask: F32 | None) -> F32:
        """Multi-head scaled dot-product attention of rows ``q`` to ``k``/``v``, ``mask`` added to the scores."""
        heads = self._heads

        def split(m: F32) -> F32:
            return m.reshape(len(m), heads, -1).transpose(1, 0, 2)

        scores = split(q) @ split(k).transpose(0, 2, 1) * np.float32((q.shape[1] // heads) ** -0.5)
        if mask is not None:
            scores += mask
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        return np.asarray((scores @ split(v)).transpose(1, 0, 2).reshape(len(q), -1), dtype=np.float32)


def _affine(x: F32, weights: tuple[F32, F32]) -> F32:
    return np.asarray(x @ weights[0].T + weights[1], dtype=np.float32)


def _layer_norm(x: F32, scale: tuple[F32, F32]) -> F32:
    centred = x - x.mean(axis=-1, keepdims=True)
    return np.asarray(
        centred / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + _EPSILON) * scale[0] + scale[1], dtype=np.float32
    )
