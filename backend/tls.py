"""The TLS context voicegate's HTTP clients check servers' certificates with, made once per process.

httpx makes a context for every client (loading certifi's CA bundle each time), and an app, a
worker or an operator script makes several. Shared, one context checks the same way: httpx's own default
(`httpx.create_ssl_context`), certifi's bundle, or for a client that trusts the environment, SSL_CERT_FILE
or SSL_CERT_DIR, read when the first such client is made. No client of ours speaks HTTP/2, so the ALPN
protocols httpcore sets on the context as it connects are the same for all of them.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def verifying_context(*, trust_env: bool = False) -> ssl.SSLContext:
    """The process's context for clients made with this `trust_env` (httpx's default verification)."""
    return httpx.create_ssl_context(trust_env=trust_env)
