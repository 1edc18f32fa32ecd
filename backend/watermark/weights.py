"""Perth-Net's trained weights: `perth/perth_net/pretrained/implicit/perth_net_250000.pth.tar` of the
resemble-perth 1.0.1 wheel (MIT), read without torch.

The wheel is installed without its dependencies (requirements/weights.lock, `pip install --no-deps`): its
`perth` package imports torch and torchaudio, so it is never imported; the file is found through the
distribution's metadata.

Despite its name the file is not a tar: `torch.save` wrote it in its zip format (torch >= 1.6), a pickle of
`{"model": OrderedDict(name -> tensor), "step": 250000}` and float32 storages, read by `backend.torch_checkpoint`.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from backend.errors import WatermarkUnavailable
from backend.torch_checkpoint import PackagedCheckpoint

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


CHECKPOINT: Final = PackagedCheckpoint(
    distribution=DISTRIBUTION,
    file=FILE,
    sha256=SHA256,
    shapes=SHAPES,
    unavailable=WatermarkUnavailable,
    source="resemble-perth 1.0.1's",
    network="Perth-Net's",
    within="model",
)
#: Where the installed resemble-perth wheel keeps the checkpoint; its tensors, checked; Perth-Net's tensors (the
#: checkpoint's `model`) from its bytes, unchecked.
locate, load, read_checkpoint = CHECKPOINT.locate, CHECKPOINT.load, CHECKPOINT.read
