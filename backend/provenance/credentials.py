"""The certificate chain and key that sign manifests: read from VOICEGATE_C2PA_CERT / VOICEGATE_C2PA_KEY and
checked at start-up against what c2pa-rs demands of a signing certificate, so a bad credential stops the
process with one line naming the variable instead of failing every synthesis job later.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from backend.errors import SettingsError

log = logging.getLogger(__name__)

SigningAlg = Literal["es256", "es384", "es512", "ps256"]
_Ext = TypeVar("_Ext", bound=x509.ExtensionType)

CERT_VAR: Final = "VOICEGATE_C2PA_CERT"
KEY_VAR: Final = "VOICEGATE_C2PA_KEY"
ANCHORS_VAR: Final = "VOICEGATE_C2PA_TRUST_ANCHORS"

DOCUMENT_SIGNING: Final = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
#: The EKUs c2pa-rs accepts on a claim signer (its valid_eku_oids.cfg, less time-stamping and OCSP signing).
#: c2pa-rs 0.91 accepts emailProtection on its own but the others only when listed in `trust.trust_config`,
#: which is why the signer passes this list to it.
SIGNER_EKUS: Final = (
    ExtendedKeyUsageOID.EMAIL_PROTECTION,
    DOCUMENT_SIGNING,
    ObjectIdentifier("1.3.6.1.4.1.62558.2.1"),  # C2PA signing
    ObjectIdentifier("1.3.6.1.4.1.311.76.59.1.9"),  # Microsoft C2PA signing
)
_EC_ALGS: Final[dict[str, SigningAlg]] = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
MIN_RSA_BITS: Final = 2048
#: A signing certificate that expires sooner than this is reported at start-up (no time-stamp authority is
#: used offline, so a manifest only validates while its certificate does).
EXPIRY_WARNING: Final = dt.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class SigningCredentials:
    """A checked signing chain and its key, ready for c2pa; the key never shows in ``repr``."""

    alg: SigningAlg
    chain_pem: bytes
    """The signing certificate first, then its intermediates, as c2pa embeds them in the manifest."""
    key_pem: bytes = field(repr=False)
    trust_anchors_pem: bytes | None
    """Roots a manifest must chain to for `verify` to call it trusted (None: none configured)."""
    origin: str
    """Where the credentials came from, for messages: the variable, or the development CA's directory."""
    not_after: dt.datetime


def read_pem(path: Path, variable: str) -> bytes:
    """The bytes of the PEM file ``path`` named by ``variable``, or a SettingsError naming it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"{variable}: cannot read {path}: {exc.strerror or exc}") from exc


def parse_certificates(pem: bytes, variable: str, path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in file order; at least one."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise SettingsError(f"{variable}: {path} holds no readable PEM certificate ({exc})") from exc
    return certs


def parse_private_key(pem: bytes, variable: str, path: Path) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """The unencrypted EC or RSA private key in ``pem``."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError as exc:
        raise SettingsError(f"{variable}: {path} is encrypted; give voicegate the unencrypted key (mode 0600)") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SettingsError(f"{variable}: {path} holds no readable PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SettingsError(
            f"{variable}: {type(key).__name__.removeprefix('_')} keys are not supported; "
            "use an EC key on P-256/P-384/P-521 (ES256/384/512) or an RSA key of 2048+ bits (PS256)"
        )
    return key


def signing_alg(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, variable: str) -> SigningAlg:
    """The C2PA algorithm ``key`` signs with: ES* by its curve, PS256 for RSA."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise SettingsError(f"{variable}: RSA keys must have at least {MIN_RSA_BITS} bits, got {key.key_size}")
        return "ps256"
    alg = _EC_ALGS.get(key.curve.name)
    if alg is None:
        raise SettingsError(
            f"{variable}: the EC curve {key.curve.name} is not supported; use P-256 (ES256), P-384 or P-521"
        )
    return alg


def check_chain(
    chain: list[x509.Certificate],
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    *,
    now: dt.datetime,
    cert_origin: str,
    key_origin: str,
) -> None:
    """Refuse a chain c2pa-rs would refuse (C2PA spec 2.x §14.5), or whose first certificate ``key`` did not make.

    Checked: the key matches the first certificate; each certificate was issued by the next; the first is
    valid now, an X.509 v3 end-entity certificate with the digitalSignature key usage (and not keyCertSign),
    an accepted extended key usage and an authority key identifier. Trust is not checked here: that is the
    verifier's business, against its anchors.
    """
    leaf = chain[0]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(serialization.Encoding.DER, public) != key.public_key().public_bytes(
        serialization.Encoding.DER, public
    ):
        raise SettingsError(f"{key_origin} does not match the first certificate in {cert_origin}")
    for position, (cert, issuer) in enumerate(itertools.pairwise(chain), start=1):
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise SettingsError(
                f"{cert_origin}: certificate {position + 1} did not issue certificate {position}; "
                "list the signing certificate first, then each issuer in order"
            ) from exc
    if now < leaf.not_valid_before_utc:
        raise SettingsError(f"{cert_origin}: the signing certificate is not valid before {leaf.not_valid_before_utc}")
    if now >= leaf.not_valid_after_utc:
        raise SettingsError(f"{cert_origin}: the signing certificate expired on {leaf.not_valid_after_utc}")
    if leaf.version is not x509.Version.v3:
        raise SettingsError(f"{cert_origin}: the signing certificate must be X.509 v3")
    _check_extensions(leaf, cert_origin)


def _check_extensions(leaf: x509.Certificate, origin: str) -> None:
    extensions = leaf.extensions
    basic = _extension(extensions, x509.BasicConstraints)
    if basic is not None and basic.ca:
        raise SettingsError(f"{origin}: the signing certificate is a CA certificate; C2PA needs an end-entity one")
    usage = _extension(extensions, x509.KeyUsage)
    if usage is None or not usage.digital_signature or usage.key_cert_sign:
        raise SettingsError(f"{origin}: the signing certificate needs key usage digitalSignature (and not keyCertSign)")
    ekus = _extension(extensions, x509.ExtendedKeyUsage)
    if ekus is None or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in ekus or not set(ekus) & set(SIGNER_EKUS):
        raise SettingsError(
            f"{origin}: the signing certificate needs an extended key usage C2PA accepts "
            "(emailProtection, documentSigning or C2PA signing), and not anyExtendedKeyUsage"
        )
    if _extension(extensions, x509.AuthorityKeyIdentifier) is None:
        raise SettingsError(f"{origin}: the signing certificate needs an authority key identifier extension")


def _extension(extensions: x509.Extensions, kind: type[_Ext]) -> _Ext | None:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def load_configured(cert_path: Path, key_path: Path, anchors_path: Path | None) -> SigningCredentials:
    """The credentials VOICEGATE_C2PA_CERT / VOICEGATE_C2PA_KEY name, checked; SettingsError names the variable."""
    chain = parse_certificates(read_pem(cert_path, CERT_VAR), CERT_VAR, cert_path)
    key = parse_private_key(read_pem(key_path, KEY_VAR), KEY_VAR, key_path)
    alg = signing_alg(key, KEY_VAR)
    now = dt.datetime.now(dt.UTC)
    check_chain(chain, key, now=now, cert_origin=CERT_VAR, key_origin=KEY_VAR)
    mode = stat.S_IMODE(key_path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s: %s is readable by other users (mode %o); chmod 600 it", KEY_VAR, key_path, mode)
    if chain[0].not_valid_after_utc - now < EXPIRY_WARNING:
        log.warning("%s: the signing certificate expires on %s", CERT_VAR, chain[0].not_valid_after_utc)
    anchors = None
    if anchors_path is not None:
        anchors = read_pem(anchors_path, ANCHORS_VAR)
        parse_certificates(anchors, ANCHORS_VAR, anchors_path)
    if len(chain) > 1 and chain[-1].subject == chain[-1].issuer:
        # A root belongs in the verifier's anchors, not the manifest: c2pa-rs calls a chain that carries
        # its own root untrusted even when that root is an anchor.
        chain = chain[:-1]
    return SigningCredentials(
        alg=alg,
        chain_pem=b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        trust_anchors_pem=anchors,
        origin=CERT_VAR,
        not_after=chain[0].not_valid_after_utc,
    )
