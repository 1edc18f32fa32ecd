"""The one TLS context our HTTP clients share (backend.tls) still checks servers' certificates: a server
whose certificate nobody vouches for is refused, one the environment's SSL_CERT_FILE vouches for is
reached by a client that trusts the environment, and the context is made once."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backend.providers.http import create_http_client
from backend.tls import verifying_context


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that signs itself, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "voicegate test server")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def cert_files(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


@pytest.fixture
async def https_url(cert_files: tuple[Path, Path]) -> AsyncIterator[str]:
    """An HTTPS server on loopback with the self-signed certificate, answering every request 200."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(*cert_files)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # a client that refused the certificate hung up during the handshake
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"https://127.0.0.1:{port}/"


@pytest.fixture
def fresh_contexts() -> Iterator[None]:
    """Contexts made anew for the test, and again after it (the environment it set is gone by then)."""
    verifying_context.cache_clear()
    yield
    verifying_context.cache_clear()


def test_every_client_of_a_process_shares_one_context_that_checks_certificates() -> None:
    context = verifying_context()
    assert verifying_context() is context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


async def test_the_provider_client_refuses_a_certificate_nobody_vouches_for(
    https_url: str, cert_files: tuple[Path, Path]
) -> None:
    async with create_http_client() as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(https_url)
    # The same server, its certificate trusted: the refusal above was the check, not the server.
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(cert_files[0]))) as trusting:
        assert (await trusting.get(https_url)).text == "ok"


@pytest.mark.usefixtures("fresh_contexts")
async def test_a_client_that_trusts_the_environment_checks_against_its_ssl_cert_file(
    https_url: str, cert_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_files[0]))
    async with httpx.AsyncClient(verify=verifying_context(trust_env=True)) as client:
        assert (await client.get(https_url)).text == "ok"
    # A client that does not trust the environment keeps to certifi's bundle.
    async with httpx.AsyncClient(verify=verifying_context(), trust_env=False) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(https_url)
