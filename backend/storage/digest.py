"""What voicegate records of an object's content to know it again: its SHA-256 and size."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Digest:
    """The SHA-256 (hex) and size in bytes of an object's content."""

    sha256: str
    size: int

    @classmethod
    def of(cls, data: bytes) -> Digest:
        """The digest of `data`."""
        return cls(hashlib.sha256(data).hexdigest(), len(data))
