"""Bucket settings read from supabase/config.toml."""

from __future__ import annotations

import tomllib

import pytest

from backend.db.bucket_config import BucketConfig, buckets_from_config, parse_size
from backend.db.migrate import SUPABASE_DIR


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("25MiB", 25 * 1024**2),
        ("1MB", 1024**2),
        ("512KiB", 512 * 1024),
        ("2GB", 2 * 1024**3),
        ("100", 100),
        ("1.5MiB", 1572864),
        (4096, 4096),
    ],
)
def test_sizes_parse_like_the_supabase_cli(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "ten MB", "5TB", "-1MB"])
def test_invalid_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_repository_config_declares_the_private_audio_and_metadata_buckets() -> None:
    buckets = buckets_from_config(tomllib.loads((SUPABASE_DIR / "config.toml").read_text()))
    assert [b.id for b in buckets] == ["voice-metadata", "voice-previews", "voice-renders", "voice-samples"]
    assert all(not b.public for b in buckets)
    assert (buckets[0].file_size_limit, buckets[0].allowed_mime_types) == (64 * 1024, ["application/json"])
    samples = buckets[-1]
    assert samples.file_size_limit == 25 * 1024**2
    assert samples.allowed_mime_types is not None
    assert {"audio/wav", "audio/webm", "audio/mp4"} <= set(samples.allowed_mime_types)


def test_a_bucket_without_limits_has_none() -> None:
    assert buckets_from_config({"storage": {"buckets": {"b": {}}}}) == [BucketConfig("b", False, None, None)]
