"""A provenance check (decoding, the watermark, the manifest) is a long call on the CPU executor
(`backend.cpu.long_calls`), so that no other user's short work waits behind one; watched (the tier of the thread
each part runs on), never replaced."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import numpy as np
import pytest

from backend.auth.verify import UserClaims
from backend.cpu import CpuExecutor
from backend.provenance import service
from backend.provenance.service import ProvenanceService
from backend.provenance.verify import Verifier
from devkit.audio_corpus import wav_bytes
from tests.unit.test_cpu import tier_here


async def test_a_check_runs_as_a_long_call(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, str] = {}
    decode_audio, detect = service.decode_audio, service.detect

    def watched(name: str, real: Callable[..., object]) -> Callable[..., object]:
        def call(*args: object) -> object:
            seen[name] = tier_here()[0]
            return real(*args)

        return call

    monkeypatch.setattr(service, "decode_audio", watched("decode", decode_audio))
    monkeypatch.setattr(service, "detect", watched("detect", detect))
    verifier = Verifier()
    monkeypatch.setattr(verifier, "verify", watched("manifest", verifier.verify))
    user = str(uuid.uuid4())
    claims = UserClaims(sub=user, email=None, role="authenticated", aal=None, session_id=None, raw={"sub": user})
    tone = (0.1 * np.sin(2 * np.pi * 220 * np.arange(16_000) / 16_000)).astype(np.float32)
    data = wav_bytes(tone)
    async with CpuExecutor(1) as cpu:
        found = await ProvenanceService(cpu, verifier).check(claims, data)
    decoded = decode_audio(data)
    assert found.watermark.score == detect(decoded.samples, decoded.sample_rate).score
    assert found.c2pa is None or found.c2pa.voicegate is None
    assert seen == {"decode": "long", "detect": "long", "manifest": "long"}
