"""Perth-Net's trained weights: `perth/perth_net/pretrained/implicit/perth_net_250000.pth.tar` of the
resemble-perth 1.0.1 wheel (MIT), read without torch.

The wheel is installed without its dependencies (requirements/weights.lock, `pip install --no-deps`): its
`perth` package imports torch and torchaudio, so it is never imported; the file is found through the
distribution's metadata.

Despite its name the file is not a tar: `torch.save` wrote it in its zip format (torch >= 1.6), a pickle of
`{"model": OrderedDict(name -> tensor), "step": 250000}` and float32 storages, read by `backend.torch_checkpoint`.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from backend import torch_checkpoint
from backend.errors import WatermarkUnavailable

F32 = npt.NDArray[np.float32]

DISTRIBUTION: Final = "resemble-perth"
FILE: Final = "perth/perth_net/pretrained/implicit/perth_net_250000.pth.tar"
#: The file of resemble-perth 1.0.1: other weights would neither find the marks already made nor make the same.
SHA256: Final = "a15bce457ebc53ce5e6c9c3f11df78cf7ee2bf9cdab0a798902135b4c4027670"
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


def read_checkpoint(data: bytes) -> dict[str, F32]:
    """Perth-Net's tensors (the checkpoint's `model`), as float32 arrays of their own; ValueError on anything but
    a zip-format torch checkpoint of float tensors (`backend.torch_checkpoint`)."""
    return torch_checkpoint.read_checkpoint(data, within="model")


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
