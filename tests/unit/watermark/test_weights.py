"""Perth-Net's weights are read from the installed resemble-perth wheel without torch and without running
anything of the wheel's: torch's zip format, with a restricted unpickler, every member accounted for."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from backend.errors import WatermarkUnavailable
from backend.watermark import weights

ROOT = Path(__file__).resolve().parents[3]
PICKLE = "archive/data.pkl"


@pytest.fixture(scope="module")
def data() -> bytes:
    """The installed checkpoint."""
    return weights.locate().read_bytes()


def rezipped(data: bytes, changes: dict[str, bytes | None]) -> bytes:
    """``data``'s zip with members replaced (or, for None, removed) and added: a well-formed archive."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for name in source.namelist():
            if name not in changes:
                target.writestr(name, source.read(name))
        for name, member in changes.items():
            if member is not None:
                target.writestr(name, member)
    return out.getvalue()


def member(data: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name)


def test_the_weights_are_found_in_the_wheel_without_importing_it() -> None:
    probe = (
        "import sys\n"
        "from backend.watermark import weights\n"
        "tensors = weights.load(weights.locate())\n"
        "print(weights.locate().name, len(tensors),"
        " sorted(name for name in sys.modules if name.split('.')[0] in {'perth', 'torch', 'torchaudio', 'librosa'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60, cwd=ROOT
    )
    assert done.stdout.split() == ["perth_net_250000.pth.tar", "59", "[]"]


def test_the_checkpoint_reads_to_perth_nets_tensors(data: bytes) -> None:
    tensors = weights.read_checkpoint(data)

    assert {name: tensor.shape for name, tensor in tensors.items()} == weights.SHAPES
    assert all(tensor.dtype == np.float32 and tensor.flags.c_contiguous for tensor in tensors.values())
    assert all(np.isfinite(tensor).all() for tensor in tensors.values())
    # The window it was trained with is the periodic Hann window backend/watermark/perth.py frames with.
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(2048) / 2048)
    assert np.abs(tensors["ap.spectrogram.window"] - hann).max() < 1e-6
    assert sum(tensor.size for name, tensor in tensors.items() if name.startswith("encoder.")) == 2_360_960


def test_a_checkpoint_naming_any_other_global_is_refused(data: bytes) -> None:
    # Protocol 2 names a global as `c<module>\n<name>\n`: a pickle may call whatever it can name.
    pickled = member(data, PICKLE)
    tampered = pickled.replace(b"ctorch._utils\n_rebuild_tensor_v2\n", b"cos\nsystem\n", 1)
    assert tampered != pickled

    with pytest.raises(ValueError, match=r"names os\.system, which is not allowed"):
        weights.read_checkpoint(rezipped(data, {PICKLE: tampered}))


def test_a_storage_of_another_type_is_refused(data: bytes) -> None:
    pickled = member(data, PICKLE)
    doubles = pickled.replace(b"ctorch\nFloatStorage\n", b"ctorch\nDoubleStorage\n", 1)

    with pytest.raises(ValueError, match=r"names torch\.DoubleStorage, which is not allowed"):
        weights.read_checkpoint(rezipped(data, {PICKLE: doubles}))


def test_members_missing_added_cut_short_or_corrupt_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"other members than its storages: \['archive/data/0'\]"):
        weights.read_checkpoint(rezipped(data, {"archive/data/0": None}))
    with pytest.raises(ValueError, match=r"other members than its storages: \['archive/extra.py'\]"):
        weights.read_checkpoint(rezipped(data, {"archive/extra.py": b"print('hello')"}))
    short = member(data, "archive/data/1")[:-4]
    with pytest.raises(ValueError, match=r"storage 1 holds 1020 bytes where 256 elements are declared"):
        weights.read_checkpoint(rezipped(data, {"archive/data/1": short}))
    with pytest.raises(ValueError, match="no version record"):
        weights.read_checkpoint(rezipped(data, {"archive/version": None}))
    with pytest.raises(ValueError, match="not a zip-format torch checkpoint"):
        weights.read_checkpoint(data[: len(data) // 2])
    # A byte of a stored member flipped in place: the zip's CRC no longer matches.
    at = data.index(member(data, "archive/data/1")[:64])
    flipped = data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]
    with pytest.raises(ValueError, match="storage 1 cannot be read"):
        weights.read_checkpoint(flipped)


def test_a_file_that_is_not_resemble_perth_1_0_1s_is_refused_by_its_sha256(data: bytes, tmp_path: Path) -> None:
    weight = bytearray(member(data, "archive/data/1"))
    weight[-1] ^= 0x01  # one bit of one bias: still a well-formed checkpoint
    other = rezipped(data, {"archive/data/1": bytes(weight)})
    weights.read_checkpoint(other)
    path = tmp_path / "perth_net_250000.pth.tar"
    path.write_bytes(other)

    with pytest.raises(WatermarkUnavailable, match=r"has sha256 [0-9a-f]{64}, not resemble-perth 1\.0\.1's"):
        weights.load(path)
    with pytest.raises(WatermarkUnavailable, match="cannot be read"):
        weights.load(tmp_path / "missing.pth.tar")
