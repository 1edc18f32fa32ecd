-- What Supabase runs after `create extension pgmq` (supabase/postgres
-- ansible/files/postgresql_extension_custom_scripts/pgmq/after-create.sql): everything in the pgmq
-- schema belongs to `postgres`, the migrating role, so its SECURITY DEFINER functions and the
-- migrations that create queues and grant on them work without a superuser. Idempotent; run by
-- `voicegate migrate` after installing pgmq wherever the stand-ins are in place.
do $$
declare
  target constant regrole := 'voicegate_migrator'::regrole;
  r record;
begin
  alter schema pgmq owner to voicegate_migrator;
  -- Tables first: their indexes and owned sequences follow them.
  for r in
    select c.oid::regclass as rel from pg_class c
     where c.relnamespace = 'pgmq'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f') and c.relowner <> target
  loop
    execute format('alter table %s owner to voicegate_migrator', r.rel);
  end loop;
  for r in
    select c.oid::regclass as rel from pg_class c
     where c.relnamespace = 'pgmq'::regnamespace and c.relkind = 'S' and c.relowner <> target
  loop
    execute format('alter sequence %s owner to voicegate_migrator', r.rel);
  end loop;
  for r in
    select t.oid::regtype as typ from pg_type t
     where t.typnamespace = 'pgmq'::regnamespace and t.typowner <> target and t.typelem = 0
       and (t.typrelid = 0 or (select relkind from pg_class where oid = t.typrelid) = 'c')
  loop
    execute format('alter type %s owner to voicegate_migrator', r.typ);
  end loop;
  for r in
    select p.oid::regprocedure as fn from pg_proc p
     where p.pronamespace = 'pgmq'::regnamespace and p.proowner <> target
  loop
    execute format('alter routine %s owner to voicegate_migrator', r.fn);
  end loop;
end
$$;
