-- Queries of `voicegate migrate` (backend/db/migrate.py).

-- name: lock
select pg_advisory_lock(%(key)s)

-- name: unlock
select pg_advisory_unlock(%(key)s)

-- name: has_auth_users
select to_regclass('auth.users') is not null as present

-- name: has_supabase_roles
select count(*) = 4 as present
  from pg_roles where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')

-- name: has_stand_ins
-- The stand-ins' own role: a database that has it got its `auth` and `storage` from them, not from Supabase.
select exists (select from pg_roles where rolname = 'voicegate_migrator') as present

-- name: migrating_role
-- The stand-ins' migrating role, used only from a superuser session (one that may SET ROLE to it
-- and act for supautils); a Supabase database has no such role.
select r.rolname
  from pg_roles r
 where r.rolname = 'voicegate_migrator'
   and (select rolsuper from pg_roles where rolname = session_user)

-- name: has_pgmq
select to_regnamespace('pgmq') is not null as present

-- name: pgmq_available
select exists (select from pg_available_extensions where name = 'pgmq') as available

-- name: create_extension_pgmq
create extension pgmq

-- name: create_history_schema
-- The Supabase CLI's own history statements (supabase/cli pkg/migration/history.go), one each.
create schema if not exists supabase_migrations

-- name: create_history_table
create table if not exists supabase_migrations.schema_migrations (version text not null primary key)

-- name: add_history_statements
alter table supabase_migrations.schema_migrations add column if not exists statements text[]

-- name: add_history_name
alter table supabase_migrations.schema_migrations add column if not exists name text

-- name: applied_versions
select version from supabase_migrations.schema_migrations order by version

-- name: insert_version
insert into supabase_migrations.schema_migrations (version, name, statements)
values (%(version)s, %(name)s, %(statements)s)

-- name: take_version
delete from supabase_migrations.schema_migrations where version = %(version)s returning name, statements

-- name: record_version
-- A renumbered version; already there when `supabase migration repair --status applied` recorded it.
insert into supabase_migrations.schema_migrations (version, name, statements)
values (%(version)s, %(name)s, %(statements)s)
on conflict (version) do nothing

-- name: reset_session
reset all

-- name: set_lock_timeout
-- For the session, so that a statement run outside the file's transaction waits no longer; the file's own
-- `set lock_timeout` may change it, and the next file starts from `reset all` again.
select set_config('lock_timeout', '4s', false)

-- name: set_role
-- `none` is SET ROLE NONE: back to the session's own (superuser) role.
select set_config('role', %(role)s, %(local)s)

-- name: upsert_bucket
insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values (%(id)s, %(id)s, %(public)s, %(file_size_limit)s, %(allowed_mime_types)s)
on conflict (id) do update set public = excluded.public,
  file_size_limit = excluded.file_size_limit,
  allowed_mime_types = excluded.allowed_mime_types
