"""The database allows the providers the list (backend/providers/config.py PROVIDERS) names, no more and no fewer:
read from the migrated database itself, so a provider added to the list without a migration widening the schema's
list of providers (or a migration without the list) fails here, not at the first insert of a user's voice. The
schema lists them once, in the `voice_provider` domain (20261126205500_provider_domain.sql): every provider column
has the domain for its type or casts to it, so a new provider is that domain's change alone."""

from __future__ import annotations

import re

from backend.providers.config import PROVIDER_NAMES
from devkit.db import Conn

#: Where the schema lists the providers: the domain's CHECK, and nowhere else (found, not trusted: a list the query
#: no longer finds fails too, and so does a table CHECK that lists them again).
LISTS = {"voice_provider.voice_provider_check"}
#: The columns that hold a provider: each of type `voice_provider`, or (voices.tts_provider, which a partial index
#: names) checked by a cast to it.
PROVIDER_COLUMNS = {
    ("voice_clone_attempts", "provider"),
    ("voice_clone_outbox", "provider"),
    ("voice_provider_references", "provider"),
    ("voice_samples", "processed_provider"),
    ("voice_samples", "provider"),
}


def allowed(definition: str) -> set[str]:
    """The values a CHECK's `= ANY (ARRAY['a'::text, ...])` lets through."""
    return set(re.findall(r"'([^']*)'::text", definition))


def provider_lists(conn: Conn) -> dict[str, set[str]]:
    """Every CHECK of voicegate's schemas, on a table or a domain, that names at least two providers, by
    `table-or-domain.constraint`."""
    rows = conn.execute(
        """
        select coalesce(r.relname, t.typname) || '.' || c.conname, pg_get_constraintdef(c.oid)
          from pg_constraint c
          join pg_namespace n on n.oid = c.connamespace
          left join pg_class r on r.oid = c.conrelid
          left join pg_type t on t.oid = c.contypid
         where c.contype = 'c' and n.nspname in ('public', 'voicegate')
        """
    ).fetchall()
    lists = {str(name): allowed(str(definition)) for name, definition in rows}
    return {name: values for name, values in lists.items() if len(values & set(PROVIDER_NAMES)) >= 2}


def test_every_list_of_providers_in_the_schema_is_the_list(module_db: Conn) -> None:
    lists = provider_lists(module_db)
    assert set(lists) == LISTS
    for name, values in lists.items():
        assert values == set(PROVIDER_NAMES), f"{name} allows {sorted(values)}; the list is {list(PROVIDER_NAMES)}"


def test_every_provider_column_takes_the_domain(module_db: Conn) -> None:
    rows = module_db.execute(
        "select c.table_name, c.column_name from information_schema.columns c"
        " where c.table_schema = 'public' and c.domain_name = 'voice_provider'"
    ).fetchall()
    assert {(str(table), str(column)) for table, column in rows} == PROVIDER_COLUMNS
    [(check,)] = module_db.execute(
        "select pg_get_constraintdef(oid) from pg_constraint where conname = 'voices_tts_provider_check'"
    ).fetchall()
    assert "::voice_provider)" in str(check), check
