"""The database allows the providers the list (backend/providers/config.py PROVIDERS) names, no more and no fewer:
read from the migrated database itself, so a provider added to the list without a migration widening every list
of providers in the schema (or a migration without the list) fails here, not at the first insert of a user's
voice."""

from __future__ import annotations

import re

from backend.providers.config import PROVIDER_NAMES
from devkit.db import Conn

#: Where the schema lists the providers today: the domain and the tables' own CHECKs (found, not trusted: a
#: list the query no longer finds fails too).
LISTS = {
    "voice_provider.voice_provider_check",
    "voice_clone_outbox.voice_clone_outbox_provider_check",
    "voice_samples.voice_samples_processed_provider_check",
    "voice_samples.voice_samples_provider_check",
    "voices.voices_tts_provider_check",
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
