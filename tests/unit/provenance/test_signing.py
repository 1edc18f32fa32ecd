"""Every synthesized file leaves with a C2PA manifest that c2pa itself reads back, and alterations show."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import wave
from collections.abc import Callable
from pathlib import Path

import c2pa
import numpy as np
import pytest

from backend.audio.decode import decode_audio
from backend.cpu import CpuExecutor
from backend.errors import ProvenanceFailed, ProvenanceUnreadable
from backend.provenance import (
    SYNTHESIS_ASSERTION,
    TRAINED_ALGORITHMIC_MEDIA,
    ProvenanceSigner,
    SynthesisClaim,
    Verifier,
)
from backend.provenance.verify import c2pa_settings
from backend.providers.base import SampleRef
from backend.providers.local.provider import LocalProvider
from backend.settings import settings_from_env
from devkit.audio_corpus import encode, wav_bytes
from tests.unit.provenance.conftest import RATE


def read_back(data: bytes, mime: str, anchors: bytes | None) -> dict:
    """The manifest store as c2pa's own Reader reports it, trusting ``anchors``."""
    with (
        c2pa.Context.from_dict(c2pa_settings(anchors)) as context,
        c2pa.Reader(mime, io.BytesIO(data), context=context) as reader,
    ):
        return json.loads(reader.json())


def active(store: dict) -> dict:
    return store["manifests"][store["active_manifest"]]


def assertion(store: dict, label: str) -> dict:
    matches = [item["data"] for item in active(store)["assertions"] if item["label"] == label]
    assert len(matches) == 1, [item["label"] for item in active(store)["assertions"]]
    return matches[0]


def dev_ca(data_dir: Path) -> bytes:
    return (data_dir / "c2pa-dev" / "ca.pem").read_bytes()


async def local_render(cpu: CpuExecutor) -> bytes:
    """A real render: the offline `local` engine speaking in a voice enrolled from a harmonic sample."""
    t = np.arange(6 * RATE) / RATE
    reference = wav_bytes((0.4 * np.sin(2 * np.pi * 140 * t) * np.clip(np.sin(2 * np.pi * 4 * t), 0, None)), RATE)
    provider = LocalProvider(cpu=cpu)
    sample = SampleRef(data=reference, mime_type="audio/wav", duration_s=6.0, sample_rate=RATE, channels=1)
    voice = await provider.enrol([sample], name="v", language="en", transcript=None, key="k")
    return (await provider.synthesize(voice, "This voice was made by a machine.")).audio


@pytest.mark.parametrize("mime", ["audio/wav", "audio/mpeg"])
def test_c2pa_reads_back_the_ai_source_type_and_the_voicegate_assertion(
    signer: ProvenanceSigner, claim: SynthesisClaim, wav: bytes, mp3: bytes, data_dir: Path, mime: str
) -> None:
    signed = signer.sign_audio(wav if mime == "audio/wav" else mp3, mime, claim)
    store = read_back(signed, mime, dev_ca(data_dir))
    assert store["validation_state"] == "Trusted"
    assert store["validation_results"]["activeManifest"]["failure"] == []
    created = assertion(store, "c2pa.actions.v2")["actions"][0]
    assert (created["action"], created["digitalSourceType"]) == ("c2pa.created", TRAINED_ALGORITHMIC_MEDIA)
    ours = assertion(store, SYNTHESIS_ASSERTION)
    assert ours == {
        "voice_id": str(claim.voice_id),
        "provider": "local",
        "model": "voicegate-local-1",
        "consent_id": str(claim.consent_id),
        "consent_version": "2026-01",
        "generator": {"name": "voicegate", "version": ours["generator"]["version"]},
    }
    assert active(store)["signature_info"]["alg"].lower() == "es256"


async def test_a_local_engine_render_and_its_mp3_are_signed_and_read_back(
    signer: ProvenanceSigner, claim: SynthesisClaim, cpu: CpuExecutor
) -> None:
    render = await local_render(cpu)
    decoded = decode_audio(render)
    as_mp3 = encode(decoded.samples[0], decoded.sample_rate, "mp3", "libmp3lame")
    for data, mime in ((render, "audio/wav"), (as_mp3, "audio/mpeg")):
        result = signer.verify(await cpu.run(None, signer.sign_audio, data, mime, claim))
        assert (result.state, result.mime_type) == ("trusted", mime)
        assert result.assertion(SYNTHESIS_ASSERTION)["voice_id"] == str(claim.voice_id)  # type: ignore[index]


def test_the_signed_wav_plays_as_the_same_audio(signer: ProvenanceSigner, claim: SynthesisClaim, wav: bytes) -> None:
    signed = signer.sign_audio(wav, "audio/wav", claim)
    assert len(signed) > len(wav)
    with wave.open(io.BytesIO(wav)) as before, wave.open(io.BytesIO(signed)) as after:
        assert after.getparams() == before.getparams()
        assert after.readframes(after.getnframes()) == before.readframes(before.getnframes())
    ffmpeg_before, ffmpeg_after = decode_audio(wav), decode_audio(signed)
    assert ffmpeg_after.sample_rate == ffmpeg_before.sample_rate
    np.testing.assert_array_equal(ffmpeg_after.samples, ffmpeg_before.samples)


def test_the_signed_mp3_plays_as_the_same_audio(signer: ProvenanceSigner, claim: SynthesisClaim, mp3: bytes) -> None:
    signed = signer.sign_audio(mp3, "audio/mpeg", claim)
    assert signed[:3] == b"ID3"  # the manifest rides in an ID3v2 tag ahead of the frames
    before, after = decode_audio(mp3), decode_audio(signed)
    assert after.samples.shape[1] > RATE * 4.5
    np.testing.assert_array_equal(after.samples, before.samples)


@pytest.mark.parametrize("mime", ["audio/wav", "audio/mpeg"])
@pytest.mark.parametrize("where", [0.25, 0.5, 0.9])
def test_a_byte_changed_in_the_audio_after_signing_fails_validation(
    signer: ProvenanceSigner, claim: SynthesisClaim, wav: bytes, mp3: bytes, mime: str, where: float
) -> None:
    signed = signer.sign_audio(wav if mime == "audio/wav" else mp3, mime, claim)
    audio_start = 44 if mime == "audio/wav" else len(signed) - len(mp3)
    audio_end = len(wav) if mime == "audio/wav" else len(signed)
    altered = bytearray(signed)
    altered[audio_start + int((audio_end - audio_start) * where)] ^= 0x01
    result = signer.verify(bytes(altered))
    assert not result.valid
    assert result.state == "invalid"
    assert "assertion.dataHash.mismatch" in {failure.code for failure in result.failures}
    store = read_back(bytes(altered), mime, None)
    assert store["validation_state"] == "Invalid"


def test_a_changed_assertion_fails_validation(signer: ProvenanceSigner, claim: SynthesisClaim, wav: bytes) -> None:
    signed = signer.sign_audio(wav, "audio/wav", claim)
    position = signed.find(str(claim.consent_id).encode()[:8])
    assert position > len(wav) - 8  # the assertion's text lives in the manifest chunk after the audio
    altered = bytearray(signed)
    altered[position] = ord("f") if altered[position] != ord("f") else ord("e")
    result = signer.verify(bytes(altered))
    assert result.state == "invalid"
    assert "assertion.hashedURI.mismatch" in {failure.code for failure in result.failures}


def test_a_file_signed_elsewhere_is_valid_but_not_trusted(
    signer: ProvenanceSigner, claim: SynthesisClaim, wav: bytes
) -> None:
    verifier = Verifier(None)
    try:
        verdict = verifier.verify(signer.sign_audio(wav, "audio/wav", claim))
    finally:
        verifier.close()
    assert (verdict.valid, verdict.trusted, verdict.state) == (True, False, "valid")
    assert [failure.code for failure in verdict.failures] == ["signingCredential.untrusted"]


def test_an_unsigned_file_is_reported_unsigned(signer: ProvenanceSigner, wav: bytes, mp3: bytes) -> None:
    for data in (wav, mp3):
        result = signer.verify(data)
        assert (result.state, result.valid, result.manifest_store) == ("unsigned", False, None)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda signed: signed[: len(signed) // 2], "cannot be read as audio/wav"),
        (lambda signed: signed[:12], "cannot be read as audio/wav"),
        (lambda signed: b"RIFF\xff\xff\xff\xffWAVE" + bytes(32), "cannot be read as audio/wav"),
        (lambda signed: b"\x00garbage" * 100, "only WAV and MP3"),
    ],
    ids=["truncated", "header only", "broken header", "garbage"],
)
def test_a_truncated_or_garbage_file_is_a_clear_error(
    signer: ProvenanceSigner, claim: SynthesisClaim, wav: bytes, make: Callable[[bytes], bytes], message: str
) -> None:
    signed = signer.sign_audio(wav, "audio/wav", claim)
    with pytest.raises(ProvenanceUnreadable, match=message) as raised:
        signer.verify(make(signed))
    assert raised.value.code == "provenance_unreadable"


@pytest.mark.parametrize(
    ("data", "mime", "message"),
    [
        (b"not audio at all", "audio/wav", "only WAV and MP3|is not audio/wav"),
        (None, "audio/mpeg", "is not audio/mpeg"),
        (None, "audio/ogg", "only WAV and MP3"),
        (b"RIFF\xff\xff\xff\xffWAVE" + bytes(32), "audio/wav", "C2PA signing: Io"),
        (b"ID3\x04", "audio/mpeg", "C2PA signing: Io"),
    ],
    ids=["garbage", "wav called mp3", "unsupported type", "truncated wav", "truncated mp3"],
)
def test_signing_what_cannot_be_signed_raises_provenance_failed(
    signer: ProvenanceSigner, claim: SynthesisClaim, wav: bytes, data: bytes | None, mime: str, message: str
) -> None:
    with pytest.raises(ProvenanceFailed, match=message) as raised:
        signer.sign_audio(wav if data is None else data, mime, claim)
    assert raised.value.code == "provenance_failed"


def test_signing_again_replaces_the_manifest(signer: ProvenanceSigner, claim: SynthesisClaim, wav: bytes) -> None:
    again = SynthesisClaim(
        voice_id=uuid.uuid4(), provider="qwen", model=None, consent_id=claim.consent_id, consent_version="2"
    )
    twice = signer.sign_audio(signer.sign_audio(wav, "audio/wav", claim), "audio/wav", again)
    result = signer.verify(twice)
    assert result.trusted
    assert result.manifest_store is not None
    assert len(result.manifest_store["manifests"]) == 1
    assert result.assertion(SYNTHESIS_ASSERTION)["provider"] == "qwen"  # type: ignore[index]


async def test_concurrent_signing_on_worker_threads_keeps_each_files_claim(
    signer: ProvenanceSigner, wav: bytes, cpu: CpuExecutor
) -> None:
    claims = [
        SynthesisClaim(
            voice_id=uuid.uuid4(), provider="local", model=None, consent_id=uuid.uuid4(), consent_version="1"
        )
        for _ in range(16)
    ]
    signed = await asyncio.gather(*(cpu.run(None, signer.sign_audio, wav, "audio/wav", claim) for claim in claims))
    for claim, data in zip(claims, signed, strict=True):
        result = signer.verify(data)
        assert result.trusted
        assert result.assertion(SYNTHESIS_ASSERTION)["voice_id"] == str(claim.voice_id)  # type: ignore[index]


def test_a_closed_signer_refuses_to_sign(data_dir: Path, claim: SynthesisClaim, wav: bytes) -> None:
    closed = ProvenanceSigner.from_settings(settings_from_env({"VOICEGATE_DATA_DIR": str(data_dir)}))
    closed.close()
    with pytest.raises(ProvenanceFailed):
        closed.sign_audio(wav, "audio/wav", claim)


def test_the_manifest_carries_no_personal_data(signer: ProvenanceSigner, claim: SynthesisClaim, wav: bytes) -> None:
    result = signer.verify(signer.sign_audio(wav, "audio/wav", claim))
    ours = result.assertion(SYNTHESIS_ASSERTION)
    assert ours is not None
    assert set(ours) == {"voice_id", "provider", "model", "consent_id", "consent_version", "generator"}
    assert set(ours["generator"]) == {"name", "version"}


def test_silence_under_another_wav_type_name_is_signed(signer: ProvenanceSigner, claim: SynthesisClaim) -> None:
    quiet = wav_bytes(np.zeros(RATE, dtype=np.float32), RATE)
    assert signer.verify(signer.sign_audio(quiet, "audio/x-wav", claim)).trusted
