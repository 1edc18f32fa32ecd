"""Signing credentials: the dev CA is made once and reused; production credentials are checked at start-up
with one line naming the variable; ES256 and PS256 chains both sign and verify."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from backend.errors import SettingsError
from backend.provenance import SYNTHESIS_ASSERTION, ProvenanceSigner, SynthesisClaim, Verifier
from backend.provenance.devca import load_or_create_dev_credentials, pem_of
from backend.settings import settings_from_env
from devkit.certs import DAY, NOW, Chain, make_chain, reissue

CLAIM = SynthesisClaim(
    voice_id=uuid.uuid4(), provider="elevenlabs", model="eleven_v3", consent_id=uuid.uuid4(), consent_version="v7"
)


@pytest.fixture(scope="module")
def ec_chain() -> Chain:
    return make_chain("ec")


@pytest.fixture(scope="module")
def rsa_chain() -> Chain:
    return make_chain("rsa")


def signer_for(env: dict[str, str]) -> ProvenanceSigner:
    return ProvenanceSigner.from_settings(settings_from_env(env))


# --- embedded mode: the development CA ----------------------------------------------------------------


def test_the_dev_ca_is_created_once_private_and_reused(tmp_path: Path, wav: bytes) -> None:
    env = {"VOICEGATE_DATA_DIR": str(tmp_path)}
    first = signer_for(env)
    directory = tmp_path / "c2pa-dev"
    files = {path.name: path for path in directory.iterdir()}
    assert set(files) == {"ca.pem", "ca.key", "signer.pem", "signer.key"}
    assert {name: path.stat().st_mode & 0o777 for name, path in files.items()} == dict.fromkeys(files, 0o600)
    assert directory.stat().st_mode & 0o777 == 0o700
    contents = {name: path.read_bytes() for name, path in files.items()}
    signed = first.sign_audio(wav, "audio/wav", CLAIM)
    first.close()

    second = signer_for(env)  # a restart
    try:
        assert {name: path.read_bytes() for name, path in files.items()} == contents
        assert second.verify(signed).trusted  # the first run's files stay trusted
        assert second.alg == "es256"
    finally:
        second.close()


def test_the_dev_signing_certificate_has_the_profile_c2pa_wants(tmp_path: Path) -> None:
    signer_for({"VOICEGATE_DATA_DIR": str(tmp_path)}).close()
    leaf = x509.load_pem_x509_certificate((tmp_path / "c2pa-dev" / "signer.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((tmp_path / "c2pa-dev" / "ca.pem").read_bytes())
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.digital_signature, usage.key_cert_sign) == (True, False)
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    leaf.verify_directly_issued_by(ca)
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.not_valid_after_utc - NOW > dt.timedelta(days=3000)


def test_a_dev_ca_file_others_can_read_is_refused(tmp_path: Path) -> None:
    signer_for({"VOICEGATE_DATA_DIR": str(tmp_path)}).close()
    (tmp_path / "c2pa-dev" / "signer.key").chmod(0o644)
    with pytest.raises(SettingsError, match=r"signer.key is readable by other users \(mode 644\)"):
        signer_for({"VOICEGATE_DATA_DIR": str(tmp_path)})


def test_verifying_never_creates_a_dev_ca(tmp_path: Path) -> None:
    Verifier.from_settings(settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path)})).close()
    assert not (tmp_path / "c2pa-dev").exists()


# --- production: VOICEGATE_C2PA_CERT / VOICEGATE_C2PA_KEY -----------------------------------------------


@pytest.mark.parametrize(("kind", "alg"), [("ec", "es256"), ("rsa", "ps256")])
def test_a_configured_chain_signs_and_verifies_trusted(
    tmp_path: Path, ec_chain: Chain, rsa_chain: Chain, wav: bytes, mp3: bytes, kind: str, alg: str
) -> None:
    chain = ec_chain if kind == "ec" else rsa_chain
    env = chain.write(tmp_path)
    signer = signer_for(env)
    try:
        assert signer.alg == alg
        for data, mime in ((wav, "audio/wav"), (mp3, "audio/mpeg")):
            result = signer.verify(signer.sign_audio(data, mime, CLAIM))
            assert result.trusted
            assert result.active_manifest is not None
            assert result.active_manifest["signature_info"]["alg"].lower() == alg
            assert result.assertion(SYNTHESIS_ASSERTION)["model"] == "eleven_v3"  # type: ignore[index]
        verifier = Verifier.from_settings(settings_from_env(env))  # what `voicegate verify` trusts
        try:
            assert verifier.verify(signer.sign_audio(wav, "audio/wav", CLAIM)).trusted
        finally:
            verifier.close()
    finally:
        signer.close()
    assert not (tmp_path / "data").exists()  # no dev CA when credentials are configured


def test_a_root_at_the_end_of_the_chain_file_is_left_out_of_the_manifest(
    tmp_path: Path, ec_chain: Chain, wav: bytes
) -> None:
    env = ec_chain.write(tmp_path)
    Path(env["VOICEGATE_C2PA_CERT"]).write_bytes(
        pem_of(ec_chain.leaf) + pem_of(ec_chain.intermediate) + pem_of(ec_chain.root)
    )
    signer = signer_for(env)
    try:
        assert signer.verify(signer.sign_audio(wav, "audio/wav", CLAIM)).trusted
    finally:
        signer.close()


def test_production_without_credentials_refuses_to_start() -> None:
    with pytest.raises(SettingsError, match="set VOICEGATE_C2PA_CERT and VOICEGATE_C2PA_KEY"):
        signer_for({"DATABASE_URL": "postgresql://voicegate@db.invalid/postgres"})


def test_a_missing_key_file_names_the_variable(tmp_path: Path, ec_chain: Chain) -> None:
    env = ec_chain.write(tmp_path) | {"VOICEGATE_C2PA_KEY": str(tmp_path / "absent.pem")}
    with pytest.raises(SettingsError, match=r"^VOICEGATE_C2PA_KEY: cannot read .*absent.pem: No such file"):
        signer_for(env)


def test_an_unreadable_certificate_names_the_variable(tmp_path: Path, ec_chain: Chain) -> None:
    env = ec_chain.write(tmp_path)
    Path(env["VOICEGATE_C2PA_CERT"]).write_text("not a certificate\n")
    with pytest.raises(SettingsError, match=r"^VOICEGATE_C2PA_CERT: .* holds no readable PEM certificate"):
        signer_for(env)


def test_a_key_that_does_not_match_the_certificate_is_refused(tmp_path: Path, ec_chain: Chain) -> None:
    env = ec_chain.write(tmp_path)
    Path(env["VOICEGATE_C2PA_KEY"]).write_bytes(pem_of(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(
        SettingsError, match=r"^VOICEGATE_C2PA_KEY does not match the first certificate in VOICEGATE_C2PA_CERT$"
    ):
        signer_for(env)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (lambda: ec.generate_private_key(ec.SECP256K1()), "the EC curve secp256k1 is not supported"),
        (
            lambda: rsa.generate_private_key(65537, 1024),  # noqa: S505 - the weak key under test
            "RSA keys must have at least 2048 bits, got 1024",
        ),
        (ed25519.Ed25519PrivateKey.generate, "Ed25519PrivateKey keys are not supported"),
    ],
    ids=["secp256k1", "rsa-1024", "ed25519"],
)
def test_an_unsupported_algorithm_is_refused(
    tmp_path: Path, ec_chain: Chain, key: Callable[[], Any], message: str
) -> None:
    env = ec_chain.write(tmp_path)
    Path(env["VOICEGATE_C2PA_KEY"]).write_bytes(
        key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    with pytest.raises(SettingsError, match=f"^VOICEGATE_C2PA_KEY: .*{message}"):
        signer_for(env)


def test_an_encrypted_key_is_refused(tmp_path: Path, ec_chain: Chain) -> None:
    env = ec_chain.write(tmp_path)
    Path(env["VOICEGATE_C2PA_KEY"]).write_bytes(
        ec_chain.leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    with pytest.raises(SettingsError, match=r"^VOICEGATE_C2PA_KEY: .* is encrypted"):
        signer_for(env)


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ((NOW - 10 * DAY, NOW - DAY), "the signing certificate expired on"),
        ((NOW + DAY, NOW + 10 * DAY), "the signing certificate is not valid before"),
    ],
    ids=["expired", "not yet valid"],
)
def test_a_certificate_outside_its_validity_is_refused(
    tmp_path: Path, window: tuple[dt.datetime, dt.datetime], message: str
) -> None:
    chain = make_chain("ec", not_before=window[0], not_after=window[1])
    with pytest.raises(SettingsError, match=f"^VOICEGATE_C2PA_CERT: {message}"):
        signer_for(chain.write(tmp_path))


def test_a_certificate_expiring_soon_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    chain = make_chain("ec", not_after=NOW + 5 * DAY)
    with caplog.at_level(logging.WARNING, "backend.provenance.credentials"):
        signer_for(chain.write(tmp_path)).close()
    assert "VOICEGATE_C2PA_CERT: the signing certificate expires on" in caplog.text


@pytest.mark.parametrize(
    ("bend", "message"),
    [
        (
            {"drop": [x509.BasicConstraints], "add": [(x509.BasicConstraints(ca=True, path_length=None), True)]},
            "the signing certificate is a CA certificate",
        ),
        ({"drop": [x509.ExtendedKeyUsage]}, "the signing certificate needs an extended key usage"),
        (
            {
                "drop": [x509.ExtendedKeyUsage],
                "add": [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)],
            },
            "the signing certificate needs an extended key usage",
        ),
        ({"drop": [x509.KeyUsage]}, "the signing certificate needs key usage digitalSignature"),
        ({"drop": [x509.AuthorityKeyIdentifier]}, "the signing certificate needs an authority key identifier"),
    ],
    ids=["ca", "no eku", "server auth eku", "no key usage", "no aki"],
)
def test_a_certificate_c2pa_would_refuse_is_refused_at_start_up(
    tmp_path: Path, ec_chain: Chain, bend: dict[str, list], message: str
) -> None:
    bent = reissue(ec_chain.leaf, ec_chain.intermediate_key, **bend)
    with pytest.raises(SettingsError, match=f"^VOICEGATE_C2PA_CERT: {message}"):
        signer_for(ec_chain.write(tmp_path, leaf=bent))


def test_whatever_else_c2pa_refuses_fails_the_start_up_self_test(tmp_path: Path, ec_chain: Chain) -> None:
    # A critical extension c2pa-rs does not know passes voicegate's own checks; the self-test signature catches it.
    unknown = x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    bent = reissue(ec_chain.leaf, ec_chain.intermediate_key, add=[(unknown, True)])
    with pytest.raises(
        SettingsError, match=r"^VOICEGATE_C2PA_CERT: c2pa cannot sign with these credentials: "
    ) as raised:
        signer_for(ec_chain.write(tmp_path, leaf=bent))
    assert str(raised.value).endswith("c2pa cannot sign with these credentials: Signature: the certificate is invalid")
    assert "\n" not in str(raised.value)  # one line, as start-up errors are


def test_a_chain_in_the_wrong_order_is_refused(tmp_path: Path, ec_chain: Chain) -> None:
    env = ec_chain.write(tmp_path)
    Path(env["VOICEGATE_C2PA_CERT"]).write_bytes(pem_of(ec_chain.leaf) + pem_of(ec_chain.root))
    with pytest.raises(SettingsError, match=r"^VOICEGATE_C2PA_CERT: certificate 2 did not issue certificate 1"):
        signer_for(env)


def test_unreadable_trust_anchors_name_their_variable(tmp_path: Path, ec_chain: Chain) -> None:
    env = ec_chain.write(tmp_path) | {"VOICEGATE_C2PA_TRUST_ANCHORS": str(tmp_path / "absent.pem")}
    with pytest.raises(SettingsError, match=r"^VOICEGATE_C2PA_TRUST_ANCHORS: cannot read"):
        signer_for(env)


def test_a_root_that_is_not_the_anchor_verifies_untrusted(tmp_path: Path, ec_chain: Chain, wav: bytes) -> None:
    other = make_chain("ec")
    env = ec_chain.write(tmp_path)
    Path(env["VOICEGATE_C2PA_TRUST_ANCHORS"]).write_bytes(pem_of(other.root))
    signer = signer_for(env)
    try:
        result = signer.verify(signer.sign_audio(wav, "audio/wav", CLAIM))
    finally:
        signer.close()
    assert (result.valid, result.trusted) == (True, False)


def test_processes_starting_together_agree_on_one_dev_ca(tmp_path: Path) -> None:
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda _: load_or_create_dev_credentials(tmp_path), range(8)))
    assert {credentials.trust_anchors_pem for credentials in made} == {(tmp_path / "c2pa-dev" / "ca.pem").read_bytes()}
    assert [path.name for path in tmp_path.iterdir()] == ["c2pa-dev"]  # no temporary directory left behind
