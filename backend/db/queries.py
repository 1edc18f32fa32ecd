"""Named SQL queries kept in `.sql` files beside the code that runs them, parsed once at import.

A file holds blocks that each start with a `-- name: <identifier>` line; the block's text up to the
next header is the query, with `%(param)s` placeholders. Nothing is ever built from input.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import LiteralString, cast

_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


class QueryFileError(ValueError):
    """A `.sql` file of named queries is malformed."""


def parse_queries(text: str, source: str = "<string>") -> dict[str, LiteralString]:
    """Split `text` into its named queries."""
    parts = _HEADER.split(text)
    if parts[0].strip() and not all(line.startswith("--") for line in parts[0].strip().splitlines()):
        raise QueryFileError(f"{source}: SQL before the first '-- name:' header")
    queries: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        query = body.strip()
        if not query:
            raise QueryFileError(f"{source}: query {name!r} is empty")
        if name in queries:
            raise QueryFileError(f"{source}: query {name!r} is defined twice")
        # The files are part of the code base, so their text is as trusted as a literal.
        queries[name] = cast(LiteralString, query)
    return queries


def load_queries(path: Path) -> dict[str, LiteralString]:
    """Parse the named queries of the `.sql` file at `path`."""
    return parse_queries(path.read_text(encoding="utf-8"), path.name)
