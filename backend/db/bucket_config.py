"""Storage buckets as `supabase/config.toml` declares them (`[storage.buckets.<name>]`)."""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The repository's `supabase/config.toml`, through the `backend/db/supabase` symlink (package data in a wheel).
CONFIG_TOML = Path(__file__).resolve().parent / "supabase" / "config.toml"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$", re.IGNORECASE)
# The CLI parses sizes with binary multiples whether or not the unit says "i" (units.RAMInBytes).
_MULTIPLIER = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


@dataclass(frozen=True)
class BucketConfig:
    """One bucket's settings."""

    id: str
    public: bool
    file_size_limit: int | None
    allowed_mime_types: list[str] | None


def parse_size(value: str | int) -> int:
    """Bytes in a config size such as `"25MiB"`, `"1MB"` or `1024`."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"invalid size {value!r}; use e.g. '25MiB'")
    unit = (match[2] or "").upper().replace("I", "")
    return int(float(match[1]) * _MULTIPLIER[unit])


def buckets_from_config(config: dict[str, Any]) -> list[BucketConfig]:
    """The buckets of a parsed config.toml, in name order."""
    declared = config.get("storage", {}).get("buckets", {})
    return [
        BucketConfig(
            id=name,
            public=bool(settings.get("public", False)),
            file_size_limit=parse_size(settings["file_size_limit"]) if "file_size_limit" in settings else None,
            allowed_mime_types=list(settings["allowed_mime_types"]) if settings.get("allowed_mime_types") else None,
        )
        for name, settings in sorted(declared.items())
    ]


@functools.cache
def declared_bucket(bucket_id: str) -> BucketConfig:
    """The bucket `supabase/config.toml` declares as `bucket_id`: what `voicegate migrate` and
    `supabase seed buckets` make it. Raises LookupError for a bucket it does not declare."""
    for bucket in buckets_from_config(tomllib.loads(CONFIG_TOML.read_text(encoding="utf-8"))):
        if bucket.id == bucket_id:
            return bucket
    raise LookupError(f"supabase/config.toml declares no bucket {bucket_id!r}")
