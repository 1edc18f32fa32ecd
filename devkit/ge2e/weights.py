"""GE2E's weights, voicegate's speaker encoder before ECAPA-TDNN: `resemblyzer/pretrained.pt` of the resemblyzer 0.1.4
wheel, read without torch, for bench/voiceprint.py's comparison (no lock installs the wheel: pass its path).

`pretrained.pt` is torch's legacy (pre-1.6, non-zip) serialisation: five pickles in a row (a magic number,
the protocol version 1001, the saving system's sizes, the checkpoint, the list of storage keys), then for
each key in that list an int64 little-endian element count and the storage's raw little-endian float32
bytes. Tensors in the checkpoint are `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`
over storages named by persistent ids `("storage", torch.FloatStorage, key, location, numel, view)`; the
LSTM's tensors share one storage at different offsets. The unpickler resolves exactly the three globals
those pickles name, every other global is refused (a pickle can call anything it can name), and the file
must end where its last storage does.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt

from backend.torch_checkpoint import FloatStorage, LongStorage, Tensor, Unpickler, view

F32 = npt.NDArray[np.float32]

DISTRIBUTION: Final = "resemblyzer"
FILE: Final = "resemblyzer/pretrained.pt"
#: The file of resemblyzer 0.1.4: another file would give other voiceprints than the ones already stored.
SHA256: Final = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
_MAGIC: Final = 0x1950A86A20F9469CFC6C
_PROTOCOL: Final = 1001
_COUNT: Final = struct.Struct("<q")
_FLOAT_BYTES: Final = 4
#: The model's tensors by name, with their shapes (gate rows in torch's order: input, forget, cell, output).
SHAPES: Final[dict[str, tuple[int, ...]]] = {
    "lstm.weight_ih_l0": (1024, 40),
    **{f"lstm.weight_ih_l{layer}": (1024, 256) for layer in (1, 2)},
    **{f"lstm.weight_hh_l{layer}": (1024, 256) for layer in (0, 1, 2)},
    **{f"lstm.bias_{kind}_l{layer}": (1024,) for kind in ("ih", "hh") for layer in (0, 1, 2)},
    "linear.weight": (256, 256),
    "linear.bias": (256,),
    "similarity_weight": (1,),
    "similarity_bias": (1,),
}


class _Unpickler(Unpickler):
    """The legacy format's pickles: float32 storages alone, their keys shared by the five pickles."""

    GLOBALS: ClassVar[dict[tuple[str, str], Any]] = {
        key: found for key, found in Unpickler.GLOBALS.items() if found is not LongStorage
    }

    def __init__(self, file: io.BytesIO, storages: dict[str, int]) -> None:
        super().__init__(file)
        #: Storage key -> element count, as the persistent ids declare them.
        self.storages = storages

    def persistent_load(self, pid: Any) -> tuple[str, int]:
        if not (
            isinstance(pid, tuple)
            and len(pid) == 6
            and pid[0] == "storage"
            and pid[1] is FloatStorage
            and isinstance(pid[2], str)
            and isinstance(pid[4], int)
            and pid[5] is None
        ):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        key, numel = pid[2], pid[4]
        if self.storages.setdefault(key, numel) != numel:
            raise pickle.UnpicklingError(f"storage {key} is declared with two sizes")
        return key, numel


def read_checkpoint(data: bytes) -> dict[str, F32]:
    """The model's tensors (`model_state`) of a legacy torch checkpoint, as float32 arrays of their own.

    Raises `ValueError` on anything but the format above: another global, a storage that is missing, short or
    declared twice with different sizes, a tensor outside its storage, or bytes after the last storage.
    """
    file = io.BytesIO(data)
    storages: dict[str, int] = {}
    try:
        magic, protocol, system = (_Unpickler(file, storages).load() for _ in range(3))
        checkpoint = _Unpickler(file, storages).load()
        keys = _Unpickler(file, storages).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"not a legacy torch checkpoint of float tensors: {exc}") from exc
    if magic != _MAGIC or protocol != _PROTOCOL:
        raise ValueError("not a legacy torch checkpoint (magic number or protocol version)")
    if not isinstance(system, dict) or system.get("little_endian") is not True:
        raise ValueError("the checkpoint was not saved little-endian")
    if not isinstance(keys, list) or sorted(keys) != sorted(storages) or len(set(keys)) != len(keys):
        raise ValueError("the checkpoint's storage list does not match the storages its tensors use")
    arrays: dict[str, F32] = {}
    position = file.tell()
    for key in keys:
        if position + _COUNT.size > len(data):
            raise ValueError(f"the checkpoint ends before storage {key}")
        (count,) = _COUNT.unpack_from(data, position)
        position += _COUNT.size
        if count != storages[key] or position + count * _FLOAT_BYTES > len(data):
            raise ValueError(f"storage {key} holds {count} floats where {storages[key]} are declared, or is cut short")
        arrays[key] = np.frombuffer(data, dtype="<f4", count=count, offset=position)
        position += count * _FLOAT_BYTES
    if position != len(data):
        raise ValueError(f"{len(data) - position} bytes follow the last storage")
    state = checkpoint.get("model_state") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(tensor, Tensor) for tensor in state.values()):
        raise ValueError("the checkpoint has no model_state of tensors")
    return {
        name: view(arrays[tensor.key], tensor, name).astype(np.float32, copy=False) for name, tensor in state.items()
    }


def from_wheel(wheel: Path) -> dict[str, F32]:
    """The tensors of `pretrained.pt` inside the resemblyzer 0.1.4 wheel at ``wheel`` (``pip download --no-deps
    resemblyzer==0.1.4``), checked against ``SHA256`` and ``SHAPES``."""
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(FILE)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise ValueError(f"{FILE} has sha256 {digest}, not resemblyzer 0.1.4's {SHA256}")
    tensors = read_checkpoint(data)
    if {name: tensor.shape for name, tensor in tensors.items()} != SHAPES:
        raise ValueError(f"{FILE} holds other tensors than the GE2E speaker encoder's")
    return tensors
