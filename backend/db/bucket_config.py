"""Storage buckets as `supabase/config.toml` declares them (`[storage.buckets.<name>]`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

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
