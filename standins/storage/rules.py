"""Storage's rules on names and bodies, checked before anything is read or written: which bucket names and
object keys it takes (and which the stand-in refuses because a key becomes a file path here), which MIME
types a bucket admits, the largest object, an object's ETag, and how search text is taken literally."""

from __future__ import annotations

import os
import re

from standins.storage import errors

# Supabase Storage's `isValidKey` character set (src/storage/limits.ts, ASCII only as JavaScript's
# `\w` is); `.`/`..` and empty segments are refused on top of it because the key becomes a file path here.
_VALID_KEY = re.compile(r"[\w/!\-.*'() &$@=;:+,?]+", re.ASCII)
#: Storage itself sets no length limits, but its key becomes a file path here: Linux refuses a path
#: segment over 255 bytes (NAME_MAX), and S3, under hosted Storage, a key over 1024 bytes (a valid key
#: is ASCII, so its characters are its bytes). Refusing them up front makes a too-long name an
#: InvalidKey before anything is signed or written, not a 500.
MAX_KEY_SEGMENT_BYTES = 255
MAX_KEY_BYTES = 1024
#: A bucket id the stand-in takes: it names the bucket's directory.
VALID_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
#: No upload may exceed this whatever its bucket allows (nor may a bucket's limit): hosted Storage's free plan.
GLOBAL_FILE_SIZE_LIMIT = 50 * 1024**2


def file_etag(file: os.stat_result) -> str:
    """An object's ETag as Supabase Storage's file backend makes it under its `mtime` algorithm, from the file's
    modification time and size: it changes whenever the bytes do, on disk too, and costs a `stat`, not a read."""
    return f'"{file.st_mtime_ns:x}-{file.st_size:x}"'


def validate_key(bucket: str, path: str) -> None:
    """Refuse a bucket name or object key Storage would refuse, one that could leave the root, or one
    too long to be a file path (see MAX_KEY_BYTES)."""
    if not VALID_BUCKET.fullmatch(bucket):
        raise errors.invalid_key(bucket)
    segments = path.split("/")
    if (
        len(path) > MAX_KEY_BYTES  # checked first, so a huge key is not scanned by the pattern
        or not _VALID_KEY.fullmatch(path)
        or any(part in ("", ".", "..") or len(part) > MAX_KEY_SEGMENT_BYTES for part in segments)
    ):
        raise errors.invalid_key(f"{bucket}/{path}")


def mime_allowed(mimetype: str, allowed: list[str] | None) -> bool:
    """Storage's check: no list admits anything; `type/*` admits any subtype; otherwise exact match."""
    if not allowed:
        return True
    kind = mimetype.split("/", 1)[0]
    return mimetype in allowed or f"{kind}/*" in allowed


def escape_like(text: str) -> str:
    """Storage's `escapeLike` (src/storage/database/pg.ts): a LIKE pattern's backslash, `%` and `_` taken literally."""
    return re.sub(r"([%_])", r"\\\1", text.replace("\\", "\\\\"))
