"""Deliveries are signed exactly as Standard Webhooks specifies: the reference implementation (the
`standardwebhooks` package) verifies what voicegate signs, and refuses it after any change."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from backend.standard_webhooks.signing import new_secret, secret_key, signature, signed_headers

BODY = b'{"type":"sample.ready","timestamp":"2026-11-23T10:00:00.000000Z","data":{"sampleId":"s"}}'


def test_the_reference_implementation_verifies_our_signature() -> None:
    secret = new_secret()
    now = int(time.time())

    headers = signed_headers(secret_key(secret), "msg_1", now, BODY)

    assert Webhook(secret).verify(BODY, headers) == {
        "type": "sample.ready",
        "timestamp": "2026-11-23T10:00:00.000000Z",
        "data": {"sampleId": "s"},
    }
    assert (headers["webhook-id"], headers["webhook-timestamp"]) == ("msg_1", str(now))
    assert headers["content-type"] == "application/json"


def test_our_signature_is_the_reference_one_byte_for_byte() -> None:
    secret = new_secret()
    at = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)

    ours = signature(secret_key(secret), "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", int(at.timestamp()), BODY)

    assert ours == Webhook(secret).sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", at, BODY.decode())


def _body_changed(body: bytes, headers: dict[str, str]) -> bytes:
    return body.replace(b"sample.ready", b"sample.failed")


def _id_changed(body: bytes, headers: dict[str, str]) -> bytes:
    headers["webhook-id"] = "msg_2"
    return body


def _timestamp_changed(body: bytes, headers: dict[str, str]) -> bytes:
    headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)
    return body


@pytest.mark.parametrize("change", [_body_changed, _id_changed, _timestamp_changed], ids=["body", "id", "timestamp"])
def test_any_change_fails_verification(change: Callable[[bytes, dict[str, str]], bytes]) -> None:
    secret = new_secret()
    headers = signed_headers(secret_key(secret), "msg_1", int(time.time()), BODY)

    body = change(BODY, headers)

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_another_secret_does_not_verify() -> None:
    headers = signed_headers(secret_key(new_secret()), "msg_1", int(time.time()), BODY)

    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_new_secrets_are_whsec_and_32_random_bytes() -> None:
    first, second = new_secret(), new_secret()

    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert first != second


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("sk_" + "A" * 43, "starts with whsec_"),
        ("whsec_not base64!", "followed by base64"),
        ("whsec_" + base64.b64encode(b"x" * 16).decode(), "24 to 64 bytes, not 16"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "24 to 64 bytes, not 65"),
    ],
)
def test_a_malformed_secret_is_refused_without_being_quoted(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        secret_key(secret)
    assert secret not in str(raised.value)
