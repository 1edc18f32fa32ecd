"""Embedded mode's development CA: a root and one ES256 signing certificate, made once under the data dir.

Like the dev JWT secret, they make `voicegate up` sign from the first run without configuration. The CA
key is kept (0600) beside the certificates so the dev CA stays the one trust anchor of every file this
data directory ever signed. None of it is trusted by anyone else: production uses VOICEGATE_C2PA_CERT.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from backend.errors import SettingsError
from backend.provenance.credentials import (
    DOCUMENT_SIGNING,
    SigningCredentials,
    check_chain,
    parse_certificates,
    parse_private_key,
    signing_alg,
)

DEV_DIR: Final = "c2pa-dev"
CA_CERT: Final = "ca.pem"
CA_KEY: Final = "ca.key"
SIGNER_CERT: Final = "signer.pem"
SIGNER_KEY: Final = "signer.key"
#: Long lives: without a time-stamp authority a manifest validates only while its certificate does.
CA_LIFETIME: Final = dt.timedelta(days=20 * 365)
SIGNER_LIFETIME: Final = dt.timedelta(days=10 * 365)
#: Backdating, so a verifier whose clock is a little behind still sees the certificate as valid.
CLOCK_SKEW: Final = dt.timedelta(hours=1)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "voicegate (development)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def issue_certificate(
    subject_key: PrivateKey,
    subject: str,
    issuer: x509.Certificate | None,
    issuer_key: PrivateKey,
    *,
    ca: bool,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A certificate with the profile C2PA wants (spec §14.5): a CA (``issuer`` None: self-signed) or a
    claim signer (digitalSignature, emailProtection + documentSigning EKUs, not a CA).

    emailProtection is there because c2pa-rs accepts it without configuration, so other C2PA
    validators accept the dev signer too; documentSigning says what it is for.
    """
    issuer_name = _name(subject) if issuer is None else issuer.subject
    issuer_public = issuer_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def pem_of(item: x509.Certificate | PrivateKey) -> bytes:
    """A certificate, or an unencrypted PKCS#8 private key, as PEM."""
    if isinstance(item, x509.Certificate):
        return item.public_bytes(serialization.Encoding.PEM)
    return item.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def dev_directory(data_dir: Path) -> Path:
    """Where embedded mode keeps its development CA."""
    return data_dir / DEV_DIR


def load_or_create_dev_credentials(data_dir: Path) -> SigningCredentials:
    """The dev CA's signing credentials, created (files 0600, directory 0700) on first use.

    Creation is atomic: the four files are written to a private temporary directory that is renamed
    into place, so two processes starting together agree on one CA and nobody reads half of one.
    """
    directory = dev_directory(data_dir)
    if not directory.exists():
        _create(directory)
    return _load(directory)


def dev_trust_anchor(data_dir: Path) -> bytes | None:
    """The dev CA's certificate, if this data directory has one (verifying never creates it)."""
    try:
        return (dev_directory(data_dir) / CA_CERT).read_bytes()
    except FileNotFoundError:
        return None


def _create(directory: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key, signer_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = issue_certificate(
        ca_key,
        "voicegate development CA",
        None,
        ca_key,
        ca=True,
        not_before=now - CLOCK_SKEW,
        not_after=now + CA_LIFETIME,
    )
    signer = issue_certificate(
        signer_key,
        "voicegate development signer",
        ca,
        ca_key,
        ca=False,
        not_before=now - CLOCK_SKEW,
        not_after=now + SIGNER_LIFETIME,
    )
    directory.parent.mkdir(parents=True, exist_ok=True)
    temp = directory.parent / f".{DEV_DIR}.{os.getpid()}.{secrets.token_hex(4)}"
    temp.mkdir(mode=0o700)
    try:
        for name, item in ((CA_CERT, ca), (CA_KEY, ca_key), (SIGNER_CERT, signer), (SIGNER_KEY, signer_key)):
            fd = os.open(temp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem_of(item))
                handle.flush()
                os.fsync(handle.fileno())
        try:
            temp.rename(directory)
        except OSError:
            if not directory.exists():
                raise
            # Another process won the race; its CA is the one.
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _load(directory: Path) -> SigningCredentials:
    origin = f"the development CA in {directory}"
    contents: dict[str, bytes] = {}
    for name in (CA_CERT, CA_KEY, SIGNER_CERT, SIGNER_KEY):
        path = directory / name
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            contents[name] = path.read_bytes()
        except OSError as exc:
            raise SettingsError(
                f"{origin}: cannot read {path} ({exc.strerror}); delete {directory} to start over"
            ) from exc
        if mode & 0o077:
            raise SettingsError(f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")
    chain = parse_certificates(contents[SIGNER_CERT], origin, directory / SIGNER_CERT)
    ca = parse_certificates(contents[CA_CERT], origin, directory / CA_CERT)
    key = parse_private_key(contents[SIGNER_KEY], origin, directory / SIGNER_KEY)
    check_chain([*chain, *ca], key, now=dt.datetime.now(dt.UTC), cert_origin=origin, key_origin=origin)
    return SigningCredentials(
        alg=signing_alg(key, origin),
        chain_pem=contents[SIGNER_CERT],
        key_pem=contents[SIGNER_KEY],
        trust_anchors_pem=contents[CA_CERT],
        origin=origin,
        not_after=chain[0].not_valid_after_utc,
    )
