"""What a file says of where it came from: `POST /api/v1/provenance/check`, for any audio a user holds.

Two independent answers. The watermark (`backend.watermark`): Perth-Net's 1-bit mark, which survives
re-encoding, resampling and trimming; it carries no payload, so `present` means "marked as synthetic by
Perth-Net", which everything voicegate synthesizes is, and so is Resemble AI's own speech and chatterbox's: not
"made by voicegate". The C2PA manifest (`backend.provenance.verify`): who made the file, with which voice,
under which consent, signed; it says so only while the file is the one voicegate signed (a re-encoded copy has
none). `c2pa` is null for a file of a format that cannot carry voicegate's manifests (anything but WAV and MP3)
or that c2pa cannot parse.

The file is read under the limits of a sample upload (25 MiB; at most `MAX_DECODE_S` of audio, decoded by the
same decoders) and judged on the fair CPU executor in the caller's lane, as a long call (`backend.cpu.long_calls`):
no other user's short work waits behind a check.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from backend.audio.decode import decode_audio
from backend.auth.verify import UserClaims
from backend.cpu import CpuExecutor, long_calls
from backend.errors import ProvenanceUnreadable
from backend.provenance.claim import SYNTHESIS_ASSERTION
from backend.provenance.verify import Verifier, VerifyState
from backend.watermark import THRESHOLD, detect


class WatermarkFinding(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the file carries Perth-Net's mark: the detector's score in [0, 1], present from `threshold`."""

    present: bool
    score: float
    threshold: float = THRESHOLD


class VoicegateClaim(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """voicegate's own assertion in a manifest: the voice, the provider and model that spoke, the consent."""

    voice_id: str | None = None
    provider: str | None = None
    model: str | None = None
    consent_id: str | None = None
    consent_version: str | None = None


class C2paFinding(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """The file's C2PA manifest: `trusted` (intact, signed by a certificate this server trusts), `valid`
    (intact, another signer), `invalid` (altered after signing, or a bad signature) or `unsigned` (none)."""

    state: VerifyState
    #: The validator's failure codes for the active manifest.
    failures: list[str]
    #: The signing certificate's common name, when signed.
    signer: str | None = None
    #: voicegate's assertion, when the manifest has one.
    voicegate: VoicegateClaim | None = None


class ProvenanceCheck(msgspec.Struct, frozen=True, kw_only=True):
    """The answer of `POST /api/v1/provenance/check`."""

    watermark: WatermarkFinding
    c2pa: C2paFinding | None


@dataclass(frozen=True)
class ProvenanceService:
    """Checks files for the watermark and a C2PA manifest, on `cpu`, reading manifests with `verifier`."""

    cpu: CpuExecutor
    verifier: Verifier

    async def check(self, claims: UserClaims, data: bytes) -> ProvenanceCheck:
        """The watermark and the manifest of ``data``, any audio a sample upload takes. The audio's own refusals
        as for samples: `unsupported_audio` (415), too long (422)."""
        with long_calls():  # up to 300 s of audio decoded and judged: no other user's short work waits behind it
            return await self.cpu.run(uuid.UUID(claims.sub), self._check, data)

    def _check(self, data: bytes) -> ProvenanceCheck:
        decoded = decode_audio(data)
        found = detect(decoded.samples, decoded.sample_rate)
        return ProvenanceCheck(
            watermark=WatermarkFinding(present=found.present, score=found.score), c2pa=self._manifest(data)
        )

    def _manifest(self, data: bytes) -> C2paFinding | None:
        try:
            result = self.verifier.verify(data)
        except ProvenanceUnreadable:
            return None
        signature = (result.active_manifest or {}).get("signature_info", {})
        ours = result.assertion(SYNTHESIS_ASSERTION)
        return C2paFinding(
            state=result.state,
            failures=[failure.code for failure in result.failures],
            signer=signature.get("common_name"),
            voicegate=None if ours is None else _claim(ours),
        )


def _claim(data: dict[str, Any]) -> VoicegateClaim:
    """voicegate's assertion as its manifest holds it (snake_case members), each member a string or absent."""
    values = {name: data.get(name) for name in VoicegateClaim.__struct_fields__}
    return VoicegateClaim(**{name: None if value is None else str(value) for name, value in values.items()})
