"""Pure rules of the stand-in: keys, MIME allow-lists, the error envelope, client error mapping."""

from __future__ import annotations

import pytest
from storage3.exceptions import StorageApiError

from backend.errors import Conflict, NotFound, PayloadTooLarge, ServiceUnavailable, UnsupportedMediaType
from backend.storage.client import _call
from standins.storage import errors
from standins.storage.errors import StorageError
from standins.storage.rules import MAX_KEY_BYTES, MAX_KEY_SEGMENT_BYTES, mime_allowed, validate_key

KEY_OF_1024_BYTES = "/".join(["x" * 255] * 3 + ["x" * 254, "a"])


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


@pytest.mark.parametrize(
    "path",
    ["u/a.wav", "u/sub dir/take (1).wav", "a", f"u/{'s' * MAX_KEY_SEGMENT_BYTES}", KEY_OF_1024_BYTES],
)
def test_valid_keys(path: str) -> None:
    assert len(path) <= MAX_KEY_BYTES
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
        # Storage's pattern is ASCII only (supabase/supabase#34595: "Invalid key: example-über-test.gpx").
        ("voice-samples", "u/ä.wav"),
        # One segment over a file name's 255 bytes, or a key over 1024: InvalidKey, not an OS error.
        ("voice-samples", f"u/{'s' * (MAX_KEY_SEGMENT_BYTES + 1)}"),
        ("voice-samples", KEY_OF_1024_BYTES + "b"),
        ("voice-samples", "u/" + "a/" * 30_000 + "b"),
        ("voice-samples\n", "u/x"),
        ("..", "u/x"),
        (".uploads", "u/x"),
    ],
)
def test_invalid_keys(bucket: str, path: str) -> None:
    with pytest.raises(StorageError) as refused:
        validate_key(bucket, path)
    assert refused.value.code == "InvalidKey"
    assert (refused.value.status, refused.value.http_status) == (400, 400)
    # The key is echoed, as Storage does, but a long one only in part.
    assert refused.value.message.startswith(f"Invalid key: {bucket}")
    assert len(refused.value.message) <= 220


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
