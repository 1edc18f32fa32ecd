"""supabase/schema.sql is what the migrations make: rebuilt here as `make schema` builds it (tools/schema.py) and
compared byte for byte, so a migration committed without the file regenerated fails with the difference.

The migrated database is a clone of the suite's template; the stand-ins' is made beside it on the same server.
The file is the embedded PostgreSQL 18's dump: on another server (VOICEGATE_TEST_DATABASE_URL, Supabase's
PostgreSQL 15 say) pg_dump prints another, so there it is rebuilt on a throwaway embedded server, as the
command does.
"""

from __future__ import annotations

import difflib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import PgServer, cloned_database
from tools.schema import COMMAND, SCHEMA_FILE, apply_stand_ins, dump, generate, render

#: Lines of the difference shown; the rest is counted.
DIFF_LINES = 120


@contextmanager
def stand_ins_database(pg_server: PgServer) -> Iterator[str]:
    """A database with the stand-ins and pgmq and no migration, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    dsn = pg_server.create_database(name)
    try:
        apply_stand_ins(dsn)
        yield dsn
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def regenerated(request: pytest.FixtureRequest) -> str:
    """supabase/schema.sql as the migrations in this tree make it."""
    if os.environ.get("VOICEGATE_TEST_DATABASE_URL"):
        return generate()
    pg_server: PgServer = request.getfixturevalue("pg_server")
    template: str = request.getfixturevalue("template_db")
    with stand_ins_database(pg_server) as stand_ins, cloned_database(pg_server, template) as migrated:
        return render(dump(stand_ins), dump(migrated))


def test_schema_file_is_what_the_migrations_make(regenerated: str) -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    if regenerated == committed:
        return
    diff = list(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            regenerated.splitlines(keepends=True),
            "supabase/schema.sql (committed)",
            "supabase/schema.sql (from the migrations)",
        )
    )
    more = f"... and {len(diff) - DIFF_LINES} more lines\n" if len(diff) > DIFF_LINES else ""
    pytest.fail(
        f"supabase/schema.sql differs from what the migrations make: run `{COMMAND}` and commit it\n"
        + "".join(diff[:DIFF_LINES])
        + more,
        pytrace=False,
    )
