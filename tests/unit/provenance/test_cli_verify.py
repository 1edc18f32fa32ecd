"""`voicegate verify FILE`: the active manifest, then VALID or INVALID, exit 0 or 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.provenance import ProvenanceSigner, SynthesisClaim
from voicegate.cli import main


@pytest.fixture
def signed(tmp_path: Path, signer: ProvenanceSigner, claim: SynthesisClaim, wav: bytes) -> Path:
    path = tmp_path / "render.wav"
    path.write_bytes(signer.sign_audio(wav, "audio/wav", claim))
    return path


def verify(path: Path, data_dir: Path, *extra: str) -> int:
    return main(["verify", str(path), "--data-dir", str(data_dir), *extra])


def test_a_signed_file_prints_its_manifest_and_valid_trusted(
    signed: Path, data_dir: Path, claim: SynthesisClaim, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(signed, data_dir) == 0
    out = capsys.readouterr().out
    assert "c2pa.actions.v2: c2pa.created (trainedAlgorithmicMedia)" in out
    ours = next(line for line in out.splitlines() if line.startswith("  dev.voicegate.synthesis: "))
    for field in (f"voice_id={claim.voice_id}", "provider=local", "model=voicegate-local-1", "consent_version=2026-01"):
        assert field in ours
    assert f"consent_id={claim.consent_id}" in ours
    assert "signed by: voicegate development signer" in out
    assert out.splitlines()[-1].startswith("VALID, trusted")


def test_without_the_dev_ca_the_file_is_valid_but_not_trusted(
    signed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(signed, tmp_path / "elsewhere") == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("VALID, not trusted")


def test_an_altered_file_is_invalid(signed: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    altered = bytearray(signed.read_bytes())
    altered[4000] ^= 0x40
    signed.write_bytes(bytes(altered))
    assert verify(signed, data_dir) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("INVALID: assertion.dataHash.mismatch")


@pytest.mark.parametrize(
    ("content", "verdict"),
    [
        (None, "INVALID: the file carries no C2PA manifest"),
        (b"RIFF\xff\xff\xff\xffWAVE" + bytes(40), "INVALID: the file cannot be read as audio/wav"),
        (b"plain text, not audio\n", "INVALID: only WAV and MP3 files carry voicegate's manifests"),
    ],
    ids=["unsigned", "truncated", "not audio"],
)
def test_unsigned_or_unreadable_files_are_invalid(
    tmp_path: Path, data_dir: Path, wav: bytes, content: bytes | None, verdict: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "file"
    path.write_bytes(wav if content is None else content)
    assert verify(path, data_dir) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith(verdict)


def test_a_missing_file_is_invalid(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(tmp_path / "absent.wav", data_dir) == 1
    assert "cannot read" in capsys.readouterr().err


def test_json_prints_the_whole_manifest_store(signed: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(signed, data_dir, "--json") == 0
    out = capsys.readouterr().out
    store = json.loads(out[: out.rindex("}") + 1])
    assert store["validation_state"] == "Trusted"
    assert store["active_manifest"] in store["manifests"]
