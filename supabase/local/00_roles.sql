-- Stand-in for the roles a Supabase database has (supabase/postgres migrations/db/init-scripts and
-- migrations, reference §3.2 and §7). Applied only where Supabase itself is absent; every statement
-- is idempotent.
do $$
begin
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  -- The owners of `auth` and `storage`: the project's own roles own neither.
  if not exists (select from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin nologin noinherit createrole;
  end if;
  if not exists (select from pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin nologin noinherit createrole;
  end if;
  -- Plays Supabase's `postgres`, the role `supabase db push` migrates as: no superuser since
  -- 10000000000000_demote-postgres.sql, and no member of the auth or storage admins since
  -- 20250421084701_revoke_admin_roles_from_postgres.sql. `voicegate migrate` runs the migrations
  -- as this role whenever the stand-ins are in place.
  if not exists (select from pg_roles where rolname = 'voicegate_migrator') then
    create role voicegate_migrator nologin nosuperuser createdb createrole bypassrls;
  end if;
end
$$;

-- Upstream created them NOINHERIT, then made them INHERIT (20230529180330_alter_api_roles_for_inherit.sql).
alter role anon inherit;
alter role authenticated inherit;
alter role service_role inherit;

grant anon, authenticated, service_role to authenticator;
-- 20230201083204_grant_auth_roles_to_postgres.sql
grant anon, authenticated, service_role to voicegate_migrator;

alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';

-- Supabase's `postgres` owns the database (so the public schema, through pg_database_owner).
do $$
begin
  execute format('grant create, temporary on database %I to voicegate_migrator', current_database());
end
$$;
grant usage, create on schema public to voicegate_migrator;

-- The init scripts ran as `postgres`, so these are the migrating role's default privileges: ALL on
-- every table, function and sequence it creates in `public`, to every API role.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges for role voicegate_migrator in schema public
  grant all on tables to anon, authenticated, service_role;
alter default privileges for role voicegate_migrator in schema public
  grant all on functions to anon, authenticated, service_role;
alter default privileges for role voicegate_migrator in schema public
  grant all on sequences to anon, authenticated, service_role;

create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
grant all on schema extensions to voicegate_migrator;
