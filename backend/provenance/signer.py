"""Sign synthesized audio with an embedded C2PA manifest: one `ProvenanceSigner` per process, built from Settings.

Thread safety: `sign_audio` may run on several threads at once (the workers call it on the CPU executor,
`backend.cpu`). Each call makes its own c2pa Builder and streams; the native c2pa Signer and Context
are shared, which c2pa-python supports (its calls take shared reservations on them, and its own threaded
tests sign in parallel with one Signer). ctypes drops the GIL during the native call, so signing on a
worker thread does not stall the event loop.
"""

from __future__ import annotations

import io
import logging
import uuid
from typing import TYPE_CHECKING, Final

import c2pa

from backend.errors import ProvenanceFailed, ProvenanceUnreadable, SettingsError
from backend.provenance.claim import SynthesisClaim, manifest_definition
from backend.provenance.credentials import CERT_VAR, KEY_VAR, SigningCredentials, load_configured
from backend.provenance.devca import load_or_create_dev_credentials
from backend.provenance.verify import Verifier, VerifyResult, c2pa_settings, signed_format

if TYPE_CHECKING:
    from backend.settings import Settings

log = logging.getLogger(__name__)

_C2PA_ALGS: Final = {
    "es256": c2pa.C2paSigningAlg.ES256,
    "es384": c2pa.C2paSigningAlg.ES384,
    "es512": c2pa.C2paSigningAlg.ES512,
    "ps256": c2pa.C2paSigningAlg.PS256,
}
#: What start-up signs to prove the credentials work: 10 ms of silence, 8 kHz mono 16-bit.
_SELF_TEST_WAV: Final = (
    b"RIFF" + (36 + 160).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
    + (16000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    + b"data" + (160).to_bytes(4, "little") + bytes(160)
)  # fmt: skip
_SELF_TEST_CLAIM: Final = SynthesisClaim(
    voice_id=uuid.UUID(int=0), provider="self-test", model=None, consent_id=uuid.UUID(int=0), consent_version="0"
)


class ProvenanceSigner:
    """Signs WAV and MP3 bytes with voicegate's manifest, with one set of credentials, checked at start-up."""

    def __init__(self, credentials: SigningCredentials) -> None:
        """Load ``credentials`` into c2pa and sign a self-test file with them.

        Raises SettingsError naming where the credentials came from when c2pa refuses them, so a
        credential c2pa-rs would reject fails the start-up, not the first synthesis job.
        """
        self.alg = credentials.alg
        self.origin = credentials.origin
        self.not_after = credentials.not_after
        self._context = c2pa.Context.from_dict(c2pa_settings(credentials.trust_anchors_pem))
        self._verifier = Verifier(credentials.trust_anchors_pem)
        info = c2pa.C2paSignerInfo(_C2PA_ALGS[credentials.alg], credentials.chain_pem, credentials.key_pem, None)
        try:
            self._signer = c2pa.Signer.from_info(info)
            self.sign_audio(_SELF_TEST_WAV, "audio/wav", _SELF_TEST_CLAIM)
        except (c2pa.C2paError, ProvenanceFailed) as exc:
            self.close()
            cause = (exc.__cause__ or exc.detail) if isinstance(exc, ProvenanceFailed) else exc
            reason = " ".join(str(cause).split())
            raise SettingsError(f"{credentials.origin}: c2pa cannot sign with these credentials: {reason}") from exc

    @classmethod
    def from_settings(cls, settings: Settings) -> ProvenanceSigner:
        """The process's signer: VOICEGATE_C2PA_CERT / VOICEGATE_C2PA_KEY when set; in embedded mode otherwise
        the development CA under the data directory (created on first use).

        Raises SettingsError (one line, naming the variable) for an unreadable file, a key that does not
        match the certificate, an unsupported algorithm, an expired or unsuitable certificate, or, with
        DATABASE_URL, for missing credentials: an unsigned file is never served.
        """
        if settings.c2pa_cert is not None and settings.c2pa_key is not None:
            credentials = load_configured(settings.c2pa_cert, settings.c2pa_key, settings.c2pa_trust_anchors)
        elif settings.embedded:
            credentials = load_or_create_dev_credentials(settings.data_dir)
        else:
            raise SettingsError(
                f"set {CERT_VAR} and {KEY_VAR} (PEM files: signing certificate chain and its key) so "
                "synthesized audio can carry its C2PA manifest"
            )
        signer = cls(credentials)
        log.info("C2PA signing with %s (%s), certificate valid until %s", signer.origin, signer.alg, signer.not_after)
        return signer

    def sign_audio(self, data: bytes, mime: str, claim: SynthesisClaim) -> bytes:
        """``data`` (a WAV or MP3 voicegate synthesized) with an embedded manifest stating it was made by a trained
        model (`c2pa.created`, digitalSourceType trainedAlgorithmicMedia) and ``claim``.

        The audio itself is unchanged: WAV gains a `C2PA` chunk, MP3 an ID3v2 frame. c2pa verifies the
        manifest after signing. CPU-bound (`bench/provenance.py`); call it from a worker thread, e.g.
        through the CPU executor. Raises ProvenanceFailed (code `provenance_failed`) whenever no signed
        file results; the caller must then fail the job and store nothing.
        """
        try:
            mime_type = signed_format(mime, data)
        except ProvenanceUnreadable as exc:
            raise ProvenanceFailed(f"provenance failed: {exc.detail}") from exc
        signed = io.BytesIO()
        try:
            with c2pa.Builder(manifest_definition(claim), self._context) as builder:
                builder.sign(self._signer, mime_type, io.BytesIO(data), signed)
        except Exception as exc:
            # Any failure (c2pa's, or a closed signer) means no signed file, and nothing may be served.
            reason = " ".join(str(exc).split())  # c2pa lists validation failures on several lines
            raise ProvenanceFailed(f"provenance failed: C2PA signing: {reason}"[:500]) from exc
        return signed.getvalue()

    def verify(self, data: bytes, mime: str | None = None) -> VerifyResult:
        """Validate ``data``'s manifest against this signer's trust anchors (see `Verifier.verify`)."""
        return self._verifier.verify(data, mime)

    def close(self) -> None:
        """Free the native signer and contexts; signing afterwards raises ProvenanceFailed."""
        for resource in (getattr(self, "_signer", None), self._context, self._verifier):
            if resource is not None:
                resource.close()
