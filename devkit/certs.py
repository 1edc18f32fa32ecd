"""Signing chains for the tests and the benchmarks: the dev CA's certificate profile, and certificates bent
out of it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from backend.provenance.devca import PrivateKey, issue_certificate, pem_of

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Chain:
    """A root, an intermediate and a signing certificate, with the keys that made them."""

    root: x509.Certificate
    intermediate: x509.Certificate
    intermediate_key: PrivateKey
    leaf: x509.Certificate
    leaf_key: PrivateKey

    def write(self, directory: Path, *, leaf: x509.Certificate | None = None) -> dict[str, str]:
        """PEM files for the chain (leaf, intermediate), its key and its root; the env naming them."""
        directory.mkdir(parents=True, exist_ok=True)
        cert, key, anchors = directory / "chain.pem", directory / "key.pem", directory / "root.pem"
        cert.write_bytes(pem_of(leaf or self.leaf) + pem_of(self.intermediate))
        key.write_bytes(pem_of(self.leaf_key))
        key.chmod(0o600)
        anchors.write_bytes(pem_of(self.root))
        return {
            "DATABASE_URL": "postgresql://voicegate@db.invalid/postgres",
            "VOICEGATE_DATA_DIR": str(directory / "data"),
            "VOICEGATE_C2PA_CERT": str(cert),
            "VOICEGATE_C2PA_KEY": str(key),
            "VOICEGATE_C2PA_TRUST_ANCHORS": str(anchors),
        }


def make_chain(kind: str, *, not_before: dt.datetime = NOW - DAY, not_after: dt.datetime = NOW + 90 * DAY) -> Chain:
    """A three-certificate chain of ``kind`` "ec" (P-256: ES256) or "rsa" (2048 bits: PS256)."""

    def new_key() -> PrivateKey:
        return ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)

    root_key, intermediate_key, leaf_key = new_key(), new_key(), new_key()
    window = {"not_before": NOW - DAY, "not_after": NOW + 365 * DAY}
    root = issue_certificate(root_key, f"test {kind} root", None, root_key, ca=True, **window)
    intermediate = issue_certificate(intermediate_key, f"test {kind} intermediate", root, root_key, ca=True, **window)
    leaf = issue_certificate(
        leaf_key,
        f"test {kind} signer",
        intermediate,
        intermediate_key,
        ca=False,
        not_before=not_before,
        not_after=not_after,
    )
    return Chain(root, intermediate, intermediate_key, leaf, leaf_key)


def reissue(
    cert: x509.Certificate,
    issuer_key: PrivateKey,
    *,
    drop: Sequence[type[x509.ExtensionType]] = (),
    add: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    """``cert`` signed again by ``issuer_key`` without the extensions of the types in ``drop`` and with ``add``."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for extension in cert.extensions:
        if type(extension.value) not in drop:
            builder = builder.add_extension(extension.value, extension.critical)
    for value, critical in add:
        builder = builder.add_extension(value, critical)
    return builder.sign(issuer_key, hashes.SHA256())
