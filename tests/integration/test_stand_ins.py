"""The local stand-ins are as strict as a real Supabase database where voicegate can trip over the
difference (reference supabase.md §7): Storage's guard against direct deletes, GoTrue's shape of
`auth.users` and its grants, INHERIT API roles, and a migrating role that is no superuser and owns
neither `auth` nor `storage`. On PostgreSQL 18 and 15."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from devkit.db import create_user
from standins.dev_users import find_or_create_dev_user

MIGRATOR = "voicegate_migrator"


@pytest.fixture
def sql(any_db_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A superuser connection to a fresh migrated database."""
    with psycopg.connect(any_db_dsn, autocommit=True) as conn:
        yield conn


def as_role(conn: psycopg.Connection[Any], role: str, user: uuid.UUID | None = None) -> None:
    """Act as `role` (with `user`'s claims) for the rest of the current transaction."""
    claims = f'{{"role": "{role}", "sub": "{user}"}}' if user else f'{{"role": "{role}"}}'
    conn.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)", (role, claims))


def seed_object(conn: psycopg.Connection[Any], owner: uuid.UUID) -> str:
    name = f"{owner}/sample.wav"
    conn.execute(
        "insert into storage.objects (bucket_id, name, owner_id) values ('voice-samples', %s, %s)", (name, str(owner))
    )
    return name


# -- Storage: protect_delete ---------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["superuser", "service_role", "owner"])
def test_a_direct_delete_from_storage_objects_is_refused_for_everyone(
    sql: psycopg.Connection[Any], caller: str
) -> None:
    owner = create_user(sql)
    name = seed_object(sql, owner)
    with sql.transaction():
        if caller != "superuser":
            as_role(sql, "authenticated" if caller == "owner" else caller, owner if caller == "owner" else None)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Use the Storage API instead"):
            sql.execute("delete from storage.objects where name = %s", (name,))
    assert sql.execute("select count(*) from storage.objects where name = %s", (name,)).fetchone() == (1,)


def test_a_direct_delete_from_storage_buckets_is_refused(sql: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Direct deletion from storage tables"):
        sql.execute("delete from storage.buckets where id = 'voice-renders'")
    assert sql.execute("select count(*) from storage.buckets where id = 'voice-renders'").fetchone() == (1,)


def test_a_delete_goes_through_with_storages_setting_only_in_that_transaction(sql: psycopg.Connection[Any]) -> None:
    owner = create_user(sql)
    first, second = seed_object(sql, owner), f"{owner}/second.wav"
    seed_object_named = "insert into storage.objects (bucket_id, name, owner_id) values ('voice-samples', %s, %s)"
    sql.execute(seed_object_named, (second, str(owner)))
    with sql.transaction():
        # The service: in voicegate's buckets, owners delete nothing (the next test).
        as_role(sql, "service_role")
        sql.execute("select set_config('storage.allow_delete_query', 'true', true)")
        assert sql.execute("delete from storage.objects where name = %s", (first,)).rowcount == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        sql.execute("delete from storage.objects where name = %s", (second,))
    remaining = [r[0] for r in sql.execute("select name from storage.objects where bucket_id = 'voice-samples'")]
    assert remaining == [second]


def test_with_storages_setting_rls_still_decides_whose_objects_go(sql: psycopg.Connection[Any]) -> None:
    owner, other = create_user(sql), create_user(sql)
    name = seed_object(sql, owner)
    for user in (other, owner):
        with sql.transaction():
            as_role(sql, "authenticated", user)
            sql.execute("select set_config('storage.allow_delete_query', 'true', true)")
            assert sql.execute("delete from storage.objects where name = %s", (name,)).rowcount == 0
    assert sql.execute("select count(*) from storage.objects where name = %s", (name,)).fetchone() == (1,)


# -- auth.users -----------------------------------------------------------------------------------


def test_auth_users_email_is_unique_only_among_non_sso_users(sql: psycopg.Connection[Any]) -> None:
    insert = "insert into auth.users (id, email, is_sso_user) values (gen_random_uuid(), %s, %s)"
    sql.execute(insert, ("ada@example.test", True))
    sql.execute(insert, ("ada@example.test", True))
    sql.execute(insert, ("ada@example.test", False))
    with pytest.raises(psycopg.errors.UniqueViolation, match="users_email_partial_key"):
        sql.execute(insert, ("ada@example.test", False))
    assert sql.execute("select count(*) from auth.users where email = 'ada@example.test'").fetchone() == (3,)


def test_auth_users_has_no_conflict_target_on_email(sql: psycopg.Connection[Any]) -> None:
    # What `voicegate token` used to do: on Supabase there is no constraint to conflict on.
    with pytest.raises(psycopg.errors.InvalidColumnReference):
        sql.execute(
            "insert into auth.users (id, email) values (gen_random_uuid(), 'x@example.test')"
            " on conflict (email) do update set updated_at = now()"
        )


def test_auth_users_columns_are_nullable_without_the_old_defaults(sql: psycopg.Connection[Any]) -> None:
    columns = {
        name: (nullable, default)
        for name, nullable, default in sql.execute(
            "select column_name, is_nullable, column_default from information_schema.columns"
            " where table_schema = 'auth' and table_name = 'users'"
        )
    }
    for column in ("aud", "role", "email", "raw_app_meta_data", "raw_user_meta_data", "created_at", "updated_at"):
        assert columns[column] == ("YES", None), column
    assert columns["is_sso_user"] == ("NO", "false")
    user = create_user(sql)
    row = sql.execute("select aud, role, created_at, raw_app_meta_data from auth.users where id = %s", (user,))
    assert row.fetchone() == (None, None, None, None)


def test_auth_users_is_closed_to_the_api_roles_service_role_included(sql: psycopg.Connection[Any]) -> None:
    assert sql.execute("select relrowsecurity from pg_class where oid = 'auth.users'::regclass").fetchone() == (True,)
    for role in ("anon", "authenticated", "service_role"):
        with sql.transaction(force_rollback=True):
            as_role(sql, role)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                sql.execute("select id from auth.users limit 1")


async def test_dev_token_users_are_found_or_created_once_even_concurrently(any_db_dsn: str) -> None:
    async def find_or_create() -> Any:
        async with await psycopg.AsyncConnection.connect(any_db_dsn, autocommit=True) as conn:
            return (await find_or_create_dev_user(conn, "Grace@Example.test"))[0]

    ids = await asyncio.gather(*(find_or_create() for _ in range(6)))
    assert len(set(ids)) == 1
    with psycopg.connect(any_db_dsn, autocommit=True) as conn:
        rows = conn.execute("select id, email, aud, role from auth.users where email = 'grace@example.test'")
        assert rows.fetchall() == [(ids[0], "grace@example.test", "authenticated", "authenticated")]
    assert await find_or_create() == ids[0]


# -- Roles and ownership ----------------------------------------------------------------------------


def test_api_roles_inherit(sql: psycopg.Connection[Any]) -> None:
    rows = sql.execute(
        "select rolname, rolinherit from pg_roles where rolname in ('anon', 'authenticated', 'service_role')"
    )
    assert dict(rows.fetchall()) == {"anon": True, "authenticated": True, "service_role": True}


def test_the_migrating_role_is_no_superuser_and_owns_our_objects_but_not_supabases(
    sql: psycopg.Connection[Any],
) -> None:
    role = sql.execute(
        "select rolsuper, rolbypassrls, pg_has_role(%s, 'supabase_storage_admin', 'member'),"
        " pg_has_role(%s, 'supabase_auth_admin', 'member') from pg_roles where rolname = %s",
        (MIGRATOR, MIGRATOR, MIGRATOR),
    ).fetchone()
    assert role == (False, True, False, False)
    owners = dict(
        sql.execute(
            "select relnamespace::regnamespace::text || '.' || relname, relowner::regrole::text from pg_class"
            " where oid in ('auth.users'::regclass, 'storage.objects'::regclass, 'storage.buckets'::regclass,"
            "  'public.voices'::regclass, 'voicegate.audit_events'::regclass, 'pgmq.q_voice_clone_process'::regclass)"
        ).fetchall()
    )
    assert owners == {
        "auth.users": "supabase_auth_admin",
        "storage.objects": "supabase_storage_admin",
        "storage.buckets": "supabase_storage_admin",
        "public.voices": MIGRATOR,
        "voicegate.audit_events": MIGRATOR,
        "pgmq.q_voice_clone_process": MIGRATOR,
    }


def test_storage_policies_go_through_the_supautils_path_the_migrating_role_alone_is_refused(
    sql: psycopg.Connection[Any],
) -> None:
    policies = {r[0] for r in sql.execute("select policyname from pg_policies where tablename = 'objects'")}
    assert {"voicegate_objects_own_folder_select", "voicegate_objects_no_user_delete"} <= policies
    assert "voicegate_objects_own_folder_delete" not in policies
    with sql.transaction(force_rollback=True):
        sql.execute("select set_config('role', %s, true)", (MIGRATOR,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner of table objects"):
            sql.execute("create policy sneaky on storage.objects for select using (true)")
    with sql.transaction(force_rollback=True):
        sql.execute("select set_config('role', %s, true)", (MIGRATOR,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner of table objects"):
            sql.execute("alter table storage.objects disable row level security")
