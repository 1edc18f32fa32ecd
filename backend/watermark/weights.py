"""Perth-Net's trained weights: `perth/perth_net/pretrained/implicit/perth_net_250000.pth.tar` of the
resemble-perth 1.0.1 wheel (MIT), read without torch.

The wheel is installed without its dependencies (requirements/weights.lock, `pip install --no-deps`): its
`perth` package imports torch and torchaudio, so it is never imported; the file is found through the
distribution's metadata.

Despite its name the file is not a tar: `torch.save` wrote it in its zip format (torch >= 1.6). The zip holds
`archive/version` ("3"), `archive/data.pkl`, a pickle of `{"model": OrderedDict(name -> tensor), "step":
250000}`, and one stored member `archive/data/KEY` per storage: its elements as raw little-endian float32.
Tensors are `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` over storages named by
persistent ids `("storage", torch.FloatStorage, KEY, location, numel)`. The unpickler resolves exactly the three
globals that pickle names and refuses any other (a pickle can call anything it can name); the archive may
hold nothing but those members, and each storage member must be exactly as long as its id declares.
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

from backend.errors import WatermarkUnavailable

F32 = npt.NDArray[np.float32]

DISTRIBUTION: Final = "resemble-perth"
FILE: Final = "perth/perth_net/pretrained/implicit/perth_net_250000.pth.tar"
#: The file of resemble-perth 1.0.1: other weights would neither find the marks already made nor make the same.
SHA256: Final = "a15bce457ebc53ce5e6c9c3f11df78cf7ee2bf9cdab0a798902135b4c4027670"
_FLOAT_BYTES: Final = 4
_VERSION: Final = b"3\n"
#: A convolution stack: Conv1d 128 -> 256 (kernel 1), five Conv1d 256 -> 256 (kernel 7), Conv1d 256 -> OUT (k 1).
STACK_LAYERS: Final = 7


def _stack_shapes(prefix: str, out: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(STACK_LAYERS):
        first, last = layer == 0, layer == STACK_LAYERS - 1
        kernel = 1 if first or last else 7
        shapes[f"{prefix}.{layer}.conv.weight"] = (out if last else 256, 128 if first else 256, kernel)
        shapes[f"{prefix}.{layer}.conv.bias"] = (out if last else 256,)
    return shapes


#: The checkpoint's tensors by name, with their shapes: the encoder's stack, the decoder's three, and the
#: audio processor's buffers (its Hann windows and a time-stretch table, which the mark does not use).
SHAPES: Final[dict[str, tuple[int, ...]]] = {
    **_stack_shapes("encoder.layers", 128),
    **_stack_shapes("decoder.slow_layers", 2),
    **_stack_shapes("decoder.normal_layers", 2),
    **_stack_shapes("decoder.fast_layers", 2),
    "ap.spectrogram.window": (2048,),
    "ap.inv_spectrogram.window": (2048,),
    "ap.stretch.phase_advance": (1025, 1),
}


class _FloatStorage:
    """Stands for `torch.FloatStorage` in the persistent ids: a type that is only compared, never built."""


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
    """Resolves the globals of torch's zip checkpoints that hold float32 tensors, and nothing else."""

    _GLOBALS: Final[dict[tuple[str, str], Any]] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch", "FloatStorage"): _FloatStorage,
    }

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        #: Storage key -> element count, as the persistent ids declare them.
        self.storages: dict[str, int] = {}

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
            and pid[1] is _FloatStorage
            and isinstance(pid[2], str)
            and pid[2].isdigit()
            and isinstance(pid[3], str)
            and isinstance(pid[4], int)
        ):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        key, numel = pid[2], pid[4]
        if self.storages.setdefault(key, numel) != numel:
            raise pickle.UnpicklingError(f"storage {key} is declared with two sizes")
        return key, numel


def read_checkpoint(data: bytes) -> dict[str, F32]:
    """The model's tensors (`model`) of a zip-format torch checkpoint, as float32 arrays of their own.

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
        checkpoint = unpickler.load()
    except KeyError:
        raise ValueError("the checkpoint has no version record") from None
    except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError, zipfile.BadZipFile) as exc:
        raise ValueError(f"not a torch checkpoint of float tensors: {exc}") from exc
    expected = {f"{prefix}/data.pkl", f"{prefix}/version"} | {f"{prefix}/data/{key}" for key in unpickler.storages}
    if set(names) != expected:
        raise ValueError(f"the checkpoint holds other members than its storages: {sorted(set(names) ^ expected)}")
    arrays: dict[str, F32] = {}
    for key, numel in unpickler.storages.items():
        try:
            raw = archive.read(f"{prefix}/data/{key}")
        except (zipfile.BadZipFile, OSError) as exc:  # a member whose CRC does not match its bytes among them
            raise ValueError(f"storage {key} cannot be read: {exc}") from exc
        if len(raw) != numel * _FLOAT_BYTES:
            raise ValueError(f"storage {key} holds {len(raw)} bytes where {numel} floats are declared")
        arrays[key] = np.frombuffer(raw, dtype="<f4")
    state = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(tensor, _Tensor) for tensor in state.values()):
        raise ValueError("the checkpoint has no model of tensors")
    return {name: _view(arrays[tensor.key], tensor, name) for name, tensor in state.items()}


def _view(storage: F32, tensor: _Tensor, name: str) -> F32:
    """``tensor``'s elements copied out of ``storage``, after checking that every one lies inside it."""
    if len(tensor.size) != len(tensor.stride) or min((*tensor.size, *tensor.stride, tensor.offset), default=0) < 0:
        raise ValueError(f"{name} has a malformed size or stride")
    last = tensor.offset + sum((n - 1) * step for n, step in zip(tensor.size, tensor.stride, strict=True))
    if 0 in tensor.size or last >= storage.size:
        raise ValueError(f"{name} lies outside its storage")
    strides = tuple(step * _FLOAT_BYTES for step in tensor.stride)
    view = np.lib.stride_tricks.as_strided(storage[tensor.offset :], tensor.size, strides, writeable=False)
    return np.array(view, dtype=np.float32)


def locate() -> Path:
    """Where the installed resemble-perth wheel keeps the checkpoint (found by its metadata, never imported)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise WatermarkUnavailable(
            f"the {DISTRIBUTION} wheel is not installed (requirements/weights.lock, pip install --no-deps)"
        ) from None
    if not any(str(file) == FILE for file in dist.files or []):
        raise WatermarkUnavailable(f"the installed {DISTRIBUTION} {dist.version} has no {FILE}")
    return Path(str(dist.locate_file(FILE)))


def load(path: Path) -> dict[str, F32]:
    """The tensors of the checkpoint at ``path``, checked against ``SHA256`` and ``SHAPES``; raises
    `WatermarkUnavailable` (the server's install is broken, not the caller's audio) when they do not match."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WatermarkUnavailable(f"{FILE} cannot be read: {exc.strerror}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise WatermarkUnavailable(f"{FILE} has sha256 {digest}, not resemble-perth 1.0.1's {SHA256}")
    try:
        tensors = read_checkpoint(data)
    except ValueError as exc:
        raise WatermarkUnavailable(f"{FILE}: {exc}") from exc
    shapes = {name: tensor.shape for name, tensor in tensors.items()}
    if shapes != SHAPES:
        raise WatermarkUnavailable(f"{FILE} holds other tensors than Perth-Net's: {shapes}")
    return tensors
