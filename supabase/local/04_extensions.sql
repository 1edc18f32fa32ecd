-- voicegate: every migrate
-- Stand-in for the `extensions` schema a Supabase database has, with pgvector in it where the server ships it (the
-- embedded PostgreSQL does): on Supabase, `postgres` may create pgvector (supautils' privileged extensions), here
-- the migrating role may not, so it is created for it, as a superuser. Run again on every migrate, so a data
-- directory made by an older voicegate gets it too; each statement changes nothing the second time.
create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
do $$
begin
  if exists (select from pg_catalog.pg_available_extensions where name = 'vector') then
    create extension if not exists vector with schema extensions;
  end if;
end
$$;
