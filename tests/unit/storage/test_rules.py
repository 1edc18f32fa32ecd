"""Pure rules of the stand-in: keys, MIME allow-lists, the error envelope, client error mapping."""

from __future__ import annotations

import pytest
from storage3.exceptions import StorageApiError

from backend.embedded.storage import errors
from backend.embedded.storage.errors import StorageError
from backend.embedded.storage.service import mime_allowed, validate_key
from backend.errors import Conflict, NotFound, PayloadTooLarge, ServiceUnavailable, UnsupportedMediaType
from backend.storage.client import _call


@pytest.mark.parametrize(
    ("mimetype", "allowed", "ok"),
    [
        ("audio/wav", None, True),
        ("anything/at-all", [], True),
        ("audio/wav", ["audio/wav", "audio/mpeg"], True),
        ("audio/ogg", ["audio/wav", "audio/mpeg"], False),
        ("audio/ogg", ["audio/*"], True),
        ("video/ogg", ["audio/*"], False),
        # Storage compares the whole value; parameters are not stripped (reference §1.7).
        ("audio/wav;codecs=1", ["audio/wav"], False),
        ("audio/wav;codecs=1", ["audio/*"], True),
    ],
)
def test_mime_allow_list(mimetype: str, allowed: list[str] | None, ok: bool) -> None:
    assert mime_allowed(mimetype, allowed) is ok


@pytest.mark.parametrize("path", ["u/a.wav", "u/sub dir/take (1).wav", "u/ä.wav", "a"])
def test_valid_keys(path: str) -> None:
    validate_key("voice-samples", path)


@pytest.mark.parametrize(
    ("bucket", "path"),
    [
        ("voice-samples", "../etc/passwd"),
        ("voice-samples", "u/../../x"),
        ("voice-samples", "u/./x"),
        ("voice-samples", "u//x"),
        ("voice-samples", "u/x/"),
        ("voice-samples", "u/x\\y"),
        ("voice-samples", "u/x\0"),
        ("voice-samples", "u/x\n"),
        ("voice-samples\n", "u/x"),
        ("..", "u/x"),
        (".uploads", "u/x"),
    ],
)
def test_invalid_keys(bucket: str, path: str) -> None:
    with pytest.raises(StorageError) as refused:
        validate_key(bucket, path)
    assert refused.value.code == "InvalidKey"


def test_envelope_and_legacy_http_status() -> None:
    missing = errors.no_such_key()
    assert missing.body() == {
        "statusCode": "404",
        "error": "not_found",
        "message": "Object not found",
        "code": "NoSuchKey",
    }
    assert missing.http_status == 400
    assert errors.entity_too_large().body()["statusCode"] == "413"
    assert errors.internal_error().http_status == 500
    assert errors.database_unavailable().http_status == 503
    assert errors.invalid_jwt().body()["error"] == "InvalidJWT"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("404", NotFound),
        ("409", Conflict),
        ("413", PayloadTooLarge),
        ("415", UnsupportedMediaType),
        ("500", ServiceUnavailable),
        (502, ServiceUnavailable),
    ],
)
async def test_client_maps_storage_errors_by_logical_status(status: str | int, expected: type[Exception]) -> None:
    async def failing() -> None:
        raise StorageApiError("boom", "some_error", status)

    with pytest.raises(expected):
        await _call(failing)
