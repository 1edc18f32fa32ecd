"""Hand-built tokens for the cases a well-behaved library refuses to produce."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWS uses."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_jwt(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None = None) -> str:
    """A compact JWS; HMAC-SHA256 signed with ``hmac_key`` (any bytes, even a PEM), or unsigned."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    if hmac_key is None:
        return signing_input + "."
    signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"
