"""The speaker encoder's weights are read from the installed resemblyzer wheel without torch and without running
anything of the wheel's: torch's legacy format, with a restricted unpickler, every byte accounted for."""

from __future__ import annotations

import io
import pickletools
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.errors import VoiceprintUnavailable
from backend.voiceprint import weights

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def data() -> bytes:
    """The installed `pretrained.pt`."""
    return weights.locate().read_bytes()


def storages_start(data: bytes) -> int:
    """Where the storages begin: after the checkpoint's five pickles."""
    file = io.BytesIO(data)
    for _ in range(5):
        for _op in pickletools.genops(file):  # reads one pickle, to its STOP
            pass
    return file.tell()


def test_the_weights_are_found_in_the_wheel_without_importing_it() -> None:
    probe = (
        "import sys\n"
        "from backend.voiceprint import weights\n"
        "tensors = weights.load(weights.locate())\n"
        "print(weights.locate().relative_to(weights.locate().parents[1]), len(tensors),"
        " sorted(name for name in sys.modules if name.split('.')[0] in {'resemblyzer', 'torch', 'librosa'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60, cwd=ROOT
    )
    assert done.stdout.split() == ["resemblyzer/pretrained.pt", "16", "[]"]


def test_the_checkpoint_reads_to_the_encoders_tensors_with_no_byte_left(data: bytes) -> None:
    tensors = weights.read_checkpoint(data)

    assert {name: tensor.shape for name, tensor in tensors.items()} == weights.SHAPES
    assert all(tensor.dtype == np.float32 and tensor.flags.c_contiguous for tensor in tensors.values())
    assert all(np.isfinite(tensor).all() for tensor in tensors.values())
    # The twelve LSTM tensors share one storage at different offsets: each read at its own.
    lstm = [tensor for name, tensor in tensors.items() if name.startswith("lstm.")]
    assert len({tensor.tobytes() for tensor in lstm}) == 12
    # 37 storages (the optimizer's state among them) end exactly where the file does.
    with pytest.raises(ValueError, match=r"^1 bytes follow the last storage$"):
        weights.read_checkpoint(data + b"\0")


def test_a_checkpoint_naming_any_other_global_is_refused(data: bytes) -> None:
    # Protocol 2 names a global as `c<module>\n<name>\n`: a pickle may call whatever it can name.
    tampered = data.replace(b"ctorch._utils\n_rebuild_tensor_v2\n", b"cos\nsystem\n", 1)
    assert tampered != data

    with pytest.raises(ValueError, match=r"names os\.system, which is not allowed"):
        weights.read_checkpoint(tampered)


def test_a_storage_cut_short_or_miscounted_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="cut short"):
        weights.read_checkpoint(data[:-1])

    start = storages_start(data)
    (count,) = struct.unpack_from("<q", data, start)
    miscounted = data[:start] + struct.pack("<q", count + 1) + data[start + 8 :]
    with pytest.raises(ValueError, match=f"holds {count + 1} floats where {count} are declared"):
        weights.read_checkpoint(miscounted)


def test_a_file_that_is_not_resemblyzer_0_1_4s_is_refused_by_its_sha256(data: bytes, tmp_path: Path) -> None:
    flipped = bytearray(data)
    flipped[-1] ^= 0x01  # one bit of the last weight: still a well-formed checkpoint
    weights.read_checkpoint(bytes(flipped))
    path = tmp_path / "pretrained.pt"
    path.write_bytes(flipped)

    with pytest.raises(VoiceprintUnavailable, match=r"has sha256 [0-9a-f]{64}, not resemblyzer 0\.1\.4's"):
        weights.load(path)
    with pytest.raises(VoiceprintUnavailable, match="cannot be read"):
        weights.load(tmp_path / "missing.pt")
