"""Privileges, not only policies: what each API role may do to every table, sequence, function and
schema in `public`, `voicegate` and `storage`, swept with `has_*_privilege` and held against an
explicit allow-list. Anything the allow-list does not name is denied, and every object must be named,
so a new table that keeps Supabase's default grants (ALL, TRUNCATE included, to `anon` and
`authenticated`) fails here.

Written as `object -> role -> privileges`; `insert(id, name)` is a grant on those columns only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import psycopg
import pytest

from backend.db.queries import load_queries

ROLES = ("anon", "authenticated", "service_role")
SCHEMAS = ("public", "voicegate", "storage")
TABLE_PRIVILEGES = ("select", "insert", "update", "delete", "truncate", "references", "trigger")
COLUMN_PRIVILEGES = ("select", "insert", "update", "references")
SEQUENCE_PRIVILEGES = ("usage", "select", "update")

READ_WRITE = {"select", "insert", "update", "delete"}
# `grant all` as Supabase Storage grants it on its tables (storage migrations/tenant/0046): RLS and
# the `protect_delete` triggers are what hold the API roles back there. The server's own list,
# because PostgreSQL 17 added MAINTAIN.
ALL = "all"

Allowed = dict[str, dict[str, set[str]]]

TABLES: Allowed = {
    # Owners own their reflections, except the `voice` mirror and `voice_id`.
    "public.reflections": {
        "authenticated": {"select", "delete", "insert(id, name)", "update(name)"},
        "service_role": READ_WRITE,
    },
    "public.voices": {
        "authenticated": {"select", "insert(id, name, language, consent_id)", "update(name, language)"},
        "service_role": READ_WRITE,
    },
    # Owners read their consents, samples and attempts but the voiceprints: biometric data, the service's alone.
    "public.voice_consents": {
        "authenticated": {
            "select(id, owner_id, subject_name, consent_text_version, accepted_at, user_agent, ip_hash,"
            " statement_sample_path, created_at, keep_sample, keep_sample_withdrawn_at, kind, status, phrase, code,"
            " language, expires_at, recording_sha256, word_accuracy, speech_seconds, refusal, verified_at,"
            " evidence_expires_at, evidence_purged_at)",
            "insert(id, subject_name, consent_text_version, user_agent, ip_hash, statement_sample_path, keep_sample)",
        },
        "service_role": READ_WRITE,
    },
    "public.voice_samples": {
        "authenticated": {
            "select(id, owner_id, voice_id, consent_id, bucket_id, object_path, declared_type, sniffed_type,"
            " size_bytes, duration_ms, sample_rate, channels, quality_report, processed_object_path, status,"
            " failure_reason, transcript, language, expires_at, created_at, updated_at, provider,"
            " original_removed_at, processed_provider, name, speaker_match)",
            "insert(id, voice_id, consent_id, bucket_id, object_path, declared_type, transcript, language)",
        },
        "service_role": READ_WRITE,
    },
    "public.voice_clone_attempts": {
        "authenticated": {
            "select(id, voice_id, reflection_id, sample_id, owner_id, provider, source, status, runtime_status,"
            " preview_required, preview_status, retry_count, max_retries, next_retry_at, lease_owner,"
            " lease_expires_at, enrolment_key, provider_voice_id, provider_target_model, provider_request_id,"
            " provider_metadata, last_error_code, last_error_message, is_active, version, created_at, updated_at,"
            " finished_at, likeness, likeness_threshold, likeness_source, likeness_error, likeness_baseline)"
        },
        "service_role": READ_WRITE,
    },
    "public.voice_clone_attempt_events": {"authenticated": {"select"}, "service_role": READ_WRITE},
    "public.synthesis_jobs": {"authenticated": {"select"}, "service_role": READ_WRITE},
    # Every provider voice a voice has had: owners read theirs, the lifecycle writes them.
    "public.voice_provider_references": {"authenticated": {"select"}, "service_role": READ_WRITE},
    # The samples each attempt enrols: owners read theirs, the service writes them with the attempt.
    "public.voice_clone_attempt_samples": {"authenticated": {"select"}, "service_role": READ_WRITE},
    "public.reflection_sessions": {
        "authenticated": {"select", "insert(reflection_id, attempt_id)"},
        "service_role": READ_WRITE,
    },
    # Owners list their webhook endpoints; `/v1/webhooks` (the service) creates and deletes them.
    "public.webhook_endpoints": {"authenticated": {"select"}, "service_role": READ_WRITE},
    # Usage of streamed speech: owners read theirs, the service records it.
    "public.speech_streams": {"authenticated": {"select"}, "service_role": READ_WRITE},
    # Legacy producers write through the service; nobody else touches it.
    "public.voice_clone_outbox": {"service_role": {"select", "insert"}},
    "voicegate.attempt_moves": {"service_role": {"select"}},
    "voicegate.local_voices": {"service_role": READ_WRITE},
    "voicegate.selfhosted_voices": {"service_role": READ_WRITE},
    "voicegate.queue_message_errors": {"service_role": READ_WRITE},
    "voicegate.audit_events": {"service_role": {"select", "insert"}},
    # The digests of the files the service writes: nobody else may know or change them.
    "voicegate.service_written_objects": {"service_role": READ_WRITE},
    # Writes of those files under way (the voice manifests, written without a lock): the service's alone too.
    "voicegate.service_object_writes": {"service_role": READ_WRITE},
    "voicegate.idempotency_keys": {"service_role": READ_WRITE},
    # Signing secrets: written once with their endpoint, read by the worker that signs; gone with it.
    "voicegate.webhook_secrets": {"service_role": {"select", "insert"}},
    "voicegate.project_webhook": {"service_role": {"select", "update"}},
    "voicegate.work_queues": {"service_role": {"select"}},
    # Each user's create buckets: the service counts and locks them; a user who could write them would lift their
    # own limits (or truncate everyone's). Rows go with their user (on delete cascade), never one by one.
    "voicegate.user_creates": {"service_role": {"select", "insert", "update"}},
    # Erasures outlive their user: the consumer reads and advances them, item by item; they are written only by the
    # auth.users trigger (SECURITY DEFINER); an erasure's items that went are dropped once its receipt counts them, and
    # what its final scan finds is added to them.
    "voicegate.erasures": {"service_role": {"select", "update"}},
    "voicegate.erasure_items": {"service_role": {"select", "insert", "update", "delete"}},
    # The usage ledger and each user's counter: the service reserves, fills in and reads them; a user who could
    # write them would lift their own quota or erase what they spent. Rows go with their user.
    "voicegate.usage_events": {"service_role": {"select", "insert", "update"}},
    # The voice ownership registry and its holds: biometric data of two accounts at once, the service's alone.
    "voicegate.voice_prints": {"service_role": READ_WRITE},
    "voicegate.ownership_holds": {"service_role": {"select", "insert", "update"}},
    "voicegate.user_usage": {"service_role": {"select", "insert", "update"}},
    "storage.buckets": {"anon": {ALL}, "authenticated": {ALL}, "service_role": {ALL}},
    "storage.objects": {"anon": {ALL}, "authenticated": {ALL}, "service_role": {ALL}},
}

# Identity columns draw from their sequences without any privilege on them.
SEQUENCES: Allowed = {
    "public.voice_clone_attempt_events_id_seq": {},
    "public.voice_clone_outbox_id_seq": {},
    "voicegate.audit_events_id_seq": {},
    "voicegate.service_object_writes_id_seq": {},
    "voicegate.erasure_items_id_seq": {},
    "voicegate.usage_events_id_seq": {},
}

EXECUTE = {"execute"}
SERVICE_ONLY = {"service_role": EXECUTE}
NOBODY: dict[str, set[str]] = {}
#: Storage's SQL functions every API role may run, as on Supabase.
EVERYONE: Final = {"anon": EXECUTE, "authenticated": EXECUTE, "service_role": EXECUTE}
FUNCTIONS: Allowed = {
    "public.voice_launch_readiness(uuid)": {"authenticated": EXECUTE, "service_role": EXECUTE},
    # A consent's state, read by the service as the user (RLS) and as itself.
    "public.voice_consent_state(text,text,timestamp with time zone,timestamp with time zone)": {
        "authenticated": EXECUTE,
        "service_role": EXECUTE,
    },
    # SECURITY DEFINER lifecycle functions: the service's alone.
    "voicegate.transition_attempt(uuid,integer,text,text,text,text,text,jsonb)": SERVICE_ONLY,
    "voicegate.extend_attempt_lease(uuid,text,integer)": SERVICE_ONLY,
    "voicegate.record_audit(text,text,text,text,jsonb)": SERVICE_ONLY,
    "voicegate.repair_voice_mirror(uuid,text,jsonb)": SERVICE_ONLY,
    "voicegate.recover_attempt(uuid,integer,text,text,text,text,jsonb)": SERVICE_ONLY,
    "voicegate.attempt_mirror(public.voice_clone_attempts)": SERVICE_ONLY,
    "voicegate.mirror_drift(jsonb,uuid,public.voice_clone_attempts)": SERVICE_ONLY,
    "voicegate.try_timestamptz(text)": SERVICE_ONLY,
    "voicegate.purge_idempotency_keys()": SERVICE_ONLY,
    "voicegate.read_and_lease_attempts(text,integer,integer,text,integer)": SERVICE_ONLY,
    "voicegate.complete_attempt(uuid,text,text,jsonb)": SERVICE_ONLY,
    "voicegate.release_messages(text,bigint[],integer[])": SERVICE_ONLY,
    "voicegate.queue_next_due(text,bigint[])": SERVICE_ONLY,
    "voicegate.put_off_message(text,bigint,integer,integer)": SERVICE_ONLY,
    "voicegate.take_create(uuid,text,integer,double precision)": SERVICE_ONLY,
    # Whether the caller's user is still there, in every user transaction's opening statement (and the service's).
    "voicegate.require_user()": {"authenticated": EXECUTE, "service_role": EXECUTE},
    # Whether the user the service creates something for is still there: it names any user, so the service's alone.
    "voicegate.require_owner(uuid)": SERVICE_ONLY,
    # Erasure: what an operator names, what it takes, deleting the user as Supabase Auth does, what the cascade leaves.
    "voicegate.erasure_subject(text)": SERVICE_ONLY,
    "voicegate.erasure_targets(uuid)": SERVICE_ONLY,
    "voicegate.erase_user(uuid,text)": SERVICE_ONLY,
    "voicegate.erase_user_rows(uuid)": SERVICE_ONLY,
    "voicegate.erasure_leftovers(uuid)": SERVICE_ONLY,
    # Whether an object lies in an erased user's folder: the Storage stand-in's signed downloads ask it as the service.
    "voicegate.object_fenced(text)": SERVICE_ONLY,
    "voicegate.lock_usage(uuid,double precision)": SERVICE_ONLY,
    "voicegate.lock_user_jobs(uuid)": SERVICE_ONLY,
    "voicegate.reserve_usage(uuid,text,text,text,uuid,text,integer,bigint,double precision)": SERVICE_ONLY,
    # Charging send by send: a resend reserved before it is made, a send never made given back.
    "voicegate.reserve_resend(uuid,text,uuid,text,integer,bigint,double precision)": SERVICE_ONLY,
    "voicegate.release_usage(uuid,text,uuid,text,integer,double precision)": SERVICE_ONLY,
    # An operator's usage report names each account by its e-mail.
    "voicegate.account_email(uuid)": SERVICE_ONLY,
    # Retention: the maintenance sweep's, which may remove from the audit trail and the ledger only through them.
    "voicegate.audit_held(text)": SERVICE_ONLY,
    "voicegate.prune_audit_events(interval,integer)": SERVICE_ONLY,
    "voicegate.prune_usage_events(interval,integer)": SERVICE_ONLY,
    "voicegate.prune_legacy_outbox(interval,integer)": SERVICE_ONLY,
    "voicegate.prune_queue_archive(text,interval,integer)": SERVICE_ONLY,
    # Internals the functions above and the triggers call; no caller of their own.
    "voicegate.start_erasure(uuid,text)": NOBODY,
    "voicegate.erasure_lock(uuid)": NOBODY,
    "voicegate.refuse_erased_objects()": NOBODY,
    "voicegate.erase_deleted_user()": NOBODY,
    "voicegate.publish_attempt(public.voice_clone_attempts)": NOBODY,
    "voicegate.record_attempt_event(public.voice_clone_attempts,text,text,text,text,jsonb)": NOBODY,
    "voicegate.check_move(text,text,text,uuid)": NOBODY,
    "voicegate.touch_updated_at()": NOBODY,
    "voicegate.before_attempt_insert()": NOBODY,
    "voicegate.after_attempt_insert()": NOBODY,
    "voicegate.check_session_launch()": NOBODY,
    "voicegate.accept_legacy_outbox()": NOBODY,
    "voicegate.attempt_settled()": NOBODY,
    "voicegate.forget_deleted_attempt_events()": NOBODY,
    "voicegate.emit_webhook(text,uuid,jsonb)": NOBODY,
    "voicegate.emit_usage_thresholds(uuid,bigint,bigint,bigint,timestamp with time zone,double precision)": NOBODY,
    "voicegate.make_room_for_webhook(uuid,uuid,integer)": NOBODY,
    "voicegate.webhook_sample_event()": NOBODY,
    "voicegate.webhook_job_event()": NOBODY,
    "voicegate.webhook_launch_event()": NOBODY,
    "voicegate.forget_deleted_voice_references()": NOBODY,
    "voicegate.notify_queue_insert()": NOBODY,
    "voicegate.check_attempt_sample()": NOBODY,
    "voicegate.extend_consent_evidence()": NOBODY,
    # Storage's helpers, executable by everyone as on Supabase.
    "storage.foldername(text)": {"anon": EXECUTE, "authenticated": EXECUTE, "service_role": EXECUTE},
    "storage.filename(text)": {"anon": EXECUTE, "authenticated": EXECUTE, "service_role": EXECUTE},
    "storage.extension(text)": {"anon": EXECUTE, "authenticated": EXECUTE, "service_role": EXECUTE},
    "storage.protect_delete()": {"anon": EXECUTE, "authenticated": EXECUTE, "service_role": EXECUTE},
    # Storage's listing (SECURITY INVOKER: the caller's RLS decides what it lists).
    "storage.get_common_prefix(text,text,text)": {"anon": EXECUTE, "authenticated": EXECUTE, "service_role": EXECUTE},
    "storage.search(text,text,integer,integer,integer,text,text,text)": EVERYONE,
    # list-v2's (`POST /object/list-v2/{bucket}`), as Storage's migration 0050 makes them, SECURITY INVOKER too.
    "storage.search_v2(text,text,integer,integer,text,text,text,text)": EVERYONE,
    "storage.list_objects_with_delimiter(text,text,text,integer,text,text,text)": EVERYONE,
    "storage.search_by_timestamp(text,text,integer,integer,text,text,text,text)": EVERYONE,
}

SCHEMA_PRIVILEGES: Allowed = {
    "public": {"anon": {"usage"}, "authenticated": {"usage"}, "service_role": {"usage"}},
    "voicegate": {"service_role": {"usage"}},
    "storage": {"anon": {"usage"}, "authenticated": {"usage"}, "service_role": {"usage"}},
    "pgmq": {"service_role": {"usage"}},
    "supabase_migrations": {},
}

#: What the migrations make only where pgvector is (20261127080500_voice_ownership.sql).
NEEDS_PGVECTOR = frozenset({"voicegate.voice_prints"})

Granted = dict[tuple[str, str], set[str]]


def all_table_privileges(conn: psycopg.Connection[Any]) -> list[str]:
    """What `grant all` on a table means on this server."""
    return [*TABLE_PRIVILEGES, *(["maintain"] if conn.info.server_version >= 170000 else [])]


def table_privileges(conn: psycopg.Connection[Any]) -> tuple[Granted, set[str]]:
    """Every table's privileges per role (column grants as `priv(col, ...)`), and the tables swept."""
    privileges = all_table_privileges(conn)
    params = {"schemas": list(SCHEMAS), "roles": list(ROLES), "privs": privileges, "cols": list(COLUMN_PRIVILEGES)}
    granted: Granted = {}
    for name, role, privilege in conn.execute(
        "select c.oid::regclass::text, r.role, p.priv"
        "  from pg_class c, unnest(%(roles)s::text[]) r(role), unnest(%(privs)s::text[]) p(priv)"
        " where c.relnamespace::regnamespace::text = any(%(schemas)s) and c.relkind in ('r', 'p', 'v', 'm', 'f')"
        "   and has_table_privilege(r.role, c.oid, p.priv)",
        params,
    ):
        granted.setdefault((name, role), set()).add(privilege)
    for name, role, privilege, columns in conn.execute(
        "select c.oid::regclass::text, r.role, p.priv, string_agg(a.attname, ', ' order by a.attnum)"
        "  from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped,"
        "       unnest(%(roles)s::text[]) r(role), unnest(%(cols)s::text[]) p(priv)"
        " where c.relnamespace::regnamespace::text = any(%(schemas)s) and c.relkind in ('r', 'p', 'v', 'm', 'f')"
        "   and not has_table_privilege(r.role, c.oid, p.priv)"
        "   and has_column_privilege(r.role, c.oid, a.attnum, p.priv)"
        " group by 1, 2, 3",
        params,
    ):
        granted.setdefault((name, role), set()).add(f"{privilege}({columns})")
    swept = {
        r[0]
        for r in conn.execute(
            "select oid::regclass::text from pg_class"
            " where relnamespace::regnamespace::text = any(%s) and relkind in ('r', 'p', 'v', 'm', 'f')",
            (list(SCHEMAS),),
        )
    }
    return granted, swept


def sequence_privileges(conn: psycopg.Connection[Any]) -> tuple[Granted, set[str]]:
    """Every sequence's privileges per role, and the sequences swept."""
    granted: Granted = {}
    for name, role, privilege in conn.execute(
        "select c.oid::regclass::text, r.role, p.priv"
        "  from pg_class c, unnest(%s::text[]) r(role), unnest(%s::text[]) p(priv)"
        " where c.relnamespace::regnamespace::text = any(%s) and c.relkind = 'S'"
        "   and has_sequence_privilege(r.role, c.oid, p.priv)",
        (list(ROLES), list(SEQUENCE_PRIVILEGES), list(SCHEMAS)),
    ):
        granted.setdefault((name, role), set()).add(privilege)
    swept = {
        r[0]
        for r in conn.execute(
            "select oid::regclass::text from pg_class where relnamespace::regnamespace::text = any(%s)"
            " and relkind = 'S'",
            (list(SCHEMAS),),
        )
    }
    return granted, swept


def function_privileges(conn: psycopg.Connection[Any]) -> tuple[Granted, set[str]]:
    """Every function's EXECUTE per role (PUBLIC's default grant included), and the functions swept."""
    granted: Granted = {}
    for name, role in conn.execute(
        "select p.oid::regprocedure::text, r.role from pg_proc p, unnest(%s::text[]) r(role)"
        " where p.pronamespace::regnamespace::text = any(%s) and has_function_privilege(r.role, p.oid, 'execute')",
        (list(ROLES), list(SCHEMAS)),
    ):
        granted.setdefault((name, role), set()).add("execute")
    swept = {
        r[0]
        for r in conn.execute(
            "select oid::regprocedure::text from pg_proc where pronamespace::regnamespace::text = any(%s)",
            (list(SCHEMAS),),
        )
    }
    return granted, swept


def schema_privileges(conn: psycopg.Connection[Any]) -> tuple[Granted, set[str]]:
    """USAGE and CREATE per role on the swept schemas and on the two the migrations also fill."""
    granted: Granted = {}
    for name, role, privilege in conn.execute(
        "select n.nspname, r.role, p.priv"
        "  from pg_namespace n, unnest(%s::text[]) r(role), unnest(array['usage', 'create']) p(priv)"
        " where n.nspname = any(%s) and has_schema_privilege(r.role, n.oid, p.priv)",
        (list(ROLES), list(SCHEMA_PRIVILEGES)),
    ):
        granted.setdefault((name, role), set()).add(privilege)
    return granted, set(SCHEMA_PRIVILEGES)


def differences(allowed: Allowed, granted: Granted, swept: set[str], everything: list[str]) -> list[str]:
    """One line per object and role whose privileges differ from the allow-list, plus unlisted objects;
    `all` in the allow-list stands for `everything`."""
    lines = [f"{name}: not in the allow-list" for name in sorted(swept - set(allowed))]
    lines += [f"{name}: in the allow-list but not in the database" for name in sorted(set(allowed) - swept)]
    for name in sorted(swept):
        for role in ROLES:
            held = granted.get((name, role), set())
            meant = allowed.get(name, {}).get(role, set())
            if ALL in meant:
                meant = (meant - {ALL}) | set(everything)
            if held != meant:
                extra = ", ".join(sorted(held - meant)) or "-"
                missing = ", ".join(sorted(meant - held)) or "-"
                lines.append(f"{name} {role}: has {extra} beyond the allow-list; lacks {missing}")
    return lines


@pytest.fixture
def swept_db(any_db_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A superuser connection that prints qualified names (regclass, regprocedure) in full."""
    with psycopg.connect(any_db_dsn, autocommit=True) as conn:
        conn.execute("set search_path = ''")
        yield conn


SWEEPS = {
    "tables": (TABLES, table_privileges),
    "sequences": (SEQUENCES, sequence_privileges),
    "functions": (FUNCTIONS, function_privileges),
    "schemas": (SCHEMA_PRIVILEGES, schema_privileges),
}


@pytest.mark.parametrize("kind", list(SWEEPS))
def test_api_roles_hold_exactly_the_allowed_privileges(swept_db: psycopg.Connection[Any], kind: str) -> None:
    allowed, sweep = SWEEPS[kind]
    if swept_db.execute("select current_setting('voicegate.without_pgvector', true)").fetchone() == ("on",):
        # Debian's PostgreSQL 15 has no pgvector: the migrations leave the registry out there, as it asks.
        allowed = {name: roles for name, roles in allowed.items() if name not in NEEDS_PGVECTOR}
    granted, swept = sweep(swept_db)
    wrong = differences(allowed, granted, swept, all_table_privileges(swept_db))
    assert not wrong, "\n".join(["privileges differ from the allow-list:", *wrong])


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_truncate_any_public_table(swept_db: psycopg.Connection[Any], role: str) -> None:
    truncated = []
    for table in sorted(name for name in TABLES if name.startswith("public.")):
        with swept_db.transaction(force_rollback=True):
            swept_db.execute("select set_config('role', %s, true)", (role,))
            try:
                swept_db.execute(f"truncate {table}")  # fixed names from the allow-list
            except psycopg.errors.InsufficientPrivilege:
                continue
            truncated.append(table)
    assert truncated == []


def test_a_table_the_migrating_role_creates_later_gets_only_what_rls_governs(
    swept_db: psycopg.Connection[Any],
) -> None:
    with swept_db.transaction(force_rollback=True):
        swept_db.execute("select set_config('role', 'voicegate_migrator', true)")
        swept_db.execute("create table public.later (id bigint generated always as identity, note text)")
        swept_db.execute("create sequence public.later_counter")
        swept_db.execute("select set_config('role', 'none', true)")
        tables, _ = table_privileges(swept_db)
        sequences, _ = sequence_privileges(swept_db)
    for role in ROLES:
        assert tables[("public.later", role)] == {"select", "insert", "update", "delete"}, role
        assert sequences[("public.later_counter", role)] == {"usage", "select"}, role


def _columns_users_may_not_read(conn: psycopg.Connection[Any]) -> dict[str, set[str]]:
    """The columns `authenticated` may not read, by table, of the tables it may read some columns of: a `*`
    over such a table, or a query naming such a column, fails as a user."""
    rows = conn.execute(
        """
        select c.oid::regclass::text, a.attname::text
          from pg_class c
          join pg_namespace n on n.oid = c.relnamespace
          join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
         where n.nspname = 'public' and c.relkind = 'r'
           and not has_column_privilege('authenticated', c.oid, a.attnum, 'select')
           and exists (select 1 from pg_attribute b where b.attrelid = c.oid and b.attnum > 0 and not b.attisdropped
                          and has_column_privilege('authenticated', c.oid, b.attnum, 'select'))
        """
    ).fetchall()
    hidden: dict[str, set[str]] = {}
    for table, column in rows:
        hidden.setdefault(table, set()).add(column)
    return hidden


def _stars_over(query: str, table: str) -> bool:
    """True when `query` reads every column of `table`: `select *` from it, `alias.*` of it, or a write to it
    `returning *`."""
    bare = table.removeprefix("public.")
    name = rf"(?:public\.)?{re.escape(bare)}\b"
    text = _code(query)
    if re.search(rf"select\s+\*\s+from\s+{name}", text):
        return True
    if re.search(rf"(?:insert\s+into|update|delete\s+from)\s+{name}", text) and re.search(r"returning\s+\*", text):
        return True
    aliases = re.findall(rf"{name}\s+(?:as\s+)?(\w+)", text)
    return any(re.search(rf"\b{re.escape(alias)}\.\*", text) for alias in aliases)


def _code(query: str) -> str:
    return re.sub(r"--[^\n]*", "", query).lower()


def _named_queries() -> Iterator[tuple[str, str, str]]:
    root = Path(__file__).resolve().parents[2]
    for folder in ("backend", "standins", "queue_consumers", "scripts"):
        for path in sorted((root / folder).rglob("*.sql")):
            if path.with_suffix(".py").exists():
                for name, query in load_queries(path).items():
                    yield str(path.relative_to(root)), name, query


def test_no_query_reads_every_column_of_a_table_users_read_in_part(swept_db: psycopg.Connection[Any]) -> None:
    """A query a user may run names its columns where the user may not read them all: one `*` over such a
    table passed every test that ran it as the service, and answered 500 the first time a user's request took
    that path (a voice's open attempt, read while its speech was asked for)."""
    hidden = _columns_users_may_not_read(swept_db)
    assert {"public.voice_clone_attempts", "public.voice_consents", "public.voice_samples"} <= set(hidden)
    found = [
        f"{path}: {name} reads every column of {table}"
        for path, name, query in _named_queries()
        for table in sorted(hidden)
        if _stars_over(query, table)
    ]
    assert found == []


def test_a_query_naming_a_column_users_may_not_read_says_it_runs_as_the_service(
    swept_db: psycopg.Connection[Any],
) -> None:
    """The service's columns (voiceprints) are named only by queries that say they run as the service, so a
    reader of the query knows not to call it on a user's connection."""
    words = {column for columns in _columns_users_may_not_read(swept_db).values() for column in columns}
    assert {"voiceprint", "sample_voiceprint", "speech_prints"} <= words
    found = [
        f"{path}: {name} names {', '.join(sorted(named))} without saying it runs as the service"
        for path, name, query in _named_queries()
        if (named := {w for w in words if re.search(rf"\b{w}\b", _code(query))})
        and "as the service" not in query.lower()
    ]
    assert found == []
