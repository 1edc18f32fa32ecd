"""C2PA provenance for every file voicegate synthesizes.

Workers build one `ProvenanceSigner.from_settings(settings)` at start-up and call
`await ctx.cpu.run(owner, signer.sign_audio, audio, mime, SynthesisClaim(...))` (on the CPU executor) before
storing a render or preview;
`ProvenanceFailed` (code `provenance_failed`) means no signed file, so the job fails and nothing is stored.
`Verifier` reads a manifest back (`voicegate verify FILE`).
"""

from backend.provenance.claim import (
    PROVENANCE,
    SYNTHESIS_ASSERTION,
    TRAINED_ALGORITHMIC_MEDIA,
    SynthesisClaim,
)
from backend.provenance.signer import ProvenanceSigner
from backend.provenance.verify import ValidationStatus, Verifier, VerifyResult

__all__ = [
    "PROVENANCE",
    "SYNTHESIS_ASSERTION",
    "TRAINED_ALGORITHMIC_MEDIA",
    "ProvenanceSigner",
    "SynthesisClaim",
    "ValidationStatus",
    "Verifier",
    "VerifyResult",
]
