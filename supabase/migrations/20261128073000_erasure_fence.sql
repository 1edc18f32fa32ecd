-- An erasure fences its user before it snapshots anything, waits for what was in flight, and closes only once a
-- final scan finds nothing of theirs. The snapshot alone raced with work still running: an object written a moment
-- after it (a render, an upload through a signed URL) was in no item and outlived the erasure, and a provider voice
-- created while the user was being deleted was named by no row the trigger could read.
--
-- The fence is the erasure's row itself, and one lock. Every write of a `storage.objects` row checks, in the
-- transaction that would make it, whether the object's folder is that of a user with an erasure
-- (`voicegate.object_fenced`): a trigger, because Storage writes a signed upload as a role that RLS does not
-- govern. The erasure takes its user's lock before it snapshots; a write takes the same lock shared, so one that
-- began before the erasure is waited for (and snapshotted), and one that meets an erasure being started is refused.
-- Rows in voicegate's tables need no more than their foreign keys: an insert naming a deleted user fails.
--
-- 20261128073001_erasure_fence_validate validates the item kinds' check in a transaction of its own.

set lock_timeout = '4s';

-- `in_flight`: the user's work a worker held when the erasure began (leased attempts and jobs, messages being
-- handled); `settle_at`: no sooner than this are the enrolment keys looked up and the erasure closed (set by its first
-- step: the leases run out by then); `rounds`: how many final scans found something and sent it round again;
-- `leftovers`: what the last scan found.
alter table voicegate.erasures add column in_flight integer not null default 0;
alter table voicegate.erasures add column settle_at timestamptz;
alter table voicegate.erasures add column rounds integer not null default 0;
alter table voicegate.erasures add column leftovers jsonb;

-- An enrolment key (`target` the provider, `ref` the key) of an attempt that may have made a voice voicegate never
-- recorded: looked up at the provider once what was in flight has stopped, and its voice deleted.
-- squawk-ignore ban-drop-constraint -- replaced just below by one that takes every kind it took
alter table voicegate.erasure_items drop constraint erasure_items_kind_check;
alter table voicegate.erasure_items
  add constraint erasure_items_kind_check check (kind in ('provider_voice', 'object', 'enrolment_key')) not valid;
-- The final scan adds the objects it finds as items of their own.
grant insert on voicegate.erasure_items to service_role;

-- The advisory lock that orders an erasure of `p_user` and the writes into their folder.
create function voicegate.erasure_lock(p_user uuid) returns bigint
language sql
immutable
set search_path = ''
as $$
  select pg_catalog.hashtextextended('voicegate.erasure:' || p_user::text, 0)
$$;

revoke all on function voicegate.erasure_lock(uuid) from public;

-- Whether the object named `p_name` lies in the folder of a user who is being erased or was. A caller that goes on
-- to write the object holds the user's lock (shared) until it commits, so an erasure starting meanwhile waits for
-- the write and snapshots it; a caller that meets an erasure being started (its lock held) is answered true at once
-- rather than made to wait: the erasure itself may be waiting for a row this caller's transaction holds.
create function voicegate.object_fenced(p_name text) returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_folder text := split_part(p_name, '/', 1);
  v_user uuid;
begin
  if p_name is null or v_folder !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return false;
  end if;
  v_user := v_folder::uuid;
  if not pg_catalog.pg_try_advisory_xact_lock_shared(voicegate.erasure_lock(v_user)) then
    return true;
  end if;
  return exists (select 1 from voicegate.erasures e where e.user_id = v_user);
end
$$;

revoke all on function voicegate.object_fenced(text) from public;
grant execute on function voicegate.object_fenced(text) to service_role;

-- 42501, as a policy's refusal: Supabase Storage answers it 403 AccessDenied with this message.
create function voicegate.refuse_erased_objects() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if voicegate.object_fenced(new.name) then
    raise exception using errcode = '42501',
      message = 'The user whose folder this is has been erased: nothing more is stored there.';
  end if;
  return new;
end
$$;

revoke all on function voicegate.refuse_erased_objects() from public;

create trigger voicegate_refuse_erased_objects before insert or update on storage.objects
  for each row execute function voicegate.refuse_erased_objects();

-- What an erasure of `p_user` takes outside Postgres, as before, and the enrolment keys of their attempts that may
-- have made a voice no row names: one still open or leased (its create may be under way), or one that stored its
-- key and never recorded a voice (a create whose answer was lost). An attempt that has not stored its key yet will
-- store `vg-<its id>` (backend/clone/step.py), so that is the key looked up for it.
create or replace function voicegate.erasure_targets(p_user uuid)
returns table (kind text, target text, ref text, region text)
language sql
stable
security definer
set search_path = ''
as $$
  select 'provider_voice', p.provider, p.ref, max(p.region)
    from (select a.provider::text as provider, a.provider_voice_id as ref, a.provider_metadata ->> 'region' as region
            from public.voice_clone_attempts a
           where a.owner_id = p_user and a.provider_voice_id is not null
          union all
          select v.tts_provider, v.provider_voice_id, v.provider_region
            from public.voices v
           where v.owner_id = p_user and v.tts_provider is not null and v.provider_voice_id is not null
          union all
          select r.provider::text, r.provider_voice_id::text, null
            from public.voice_provider_references r
           where r.owner_id = p_user) p
   group by p.provider, p.ref
  union all
  select distinct 'object', o.bucket, o.name, null::text
    from (select so.bucket_id as bucket, so.name
            from storage.objects so
           where so.name like p_user::text || '/%'
          union all
          select s.bucket_id, s.object_path from public.voice_samples s where s.owner_id = p_user
          union all
          select s.bucket_id, s.processed_object_path
            from public.voice_samples s where s.owner_id = p_user and s.processed_object_path is not null
          union all
          select 'voice-samples', c.statement_sample_path
            from public.voice_consents c where c.owner_id = p_user and c.statement_sample_path is not null
          union all
          select j.output_bucket_id, j.output_object_path
            from public.synthesis_jobs j where j.owner_id = p_user and j.output_object_path is not null) o
   where o.bucket is not null and o.name is not null
  union all
  select distinct 'enrolment_key', a.provider::text, coalesce(nullif(a.enrolment_key, ''), 'vg-' || a.id::text),
         null::text
    from public.voice_clone_attempts a
   where a.owner_id = p_user
     and a.provider_voice_id is null
     and a.source <> 'custom_voice_id'
     and (a.enrolment_key <> '' or a.status in ('queued', 'processing', 'verifying') or a.lease_expires_at > now())
$$;

-- As before, and first the fence: the user's lock (writes into their folder under way are waited for, later ones
-- refused once this commits), then what a worker holds of theirs counted (`in_flight`), and their queued work
-- cancelled: every message of a work queue (or a dead letter) that names the user or a row of theirs.
create or replace function voicegate.start_erasure(p_user uuid, p_requested_by text) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_ids text[];
  v_in_flight integer;
  v_held integer;
  v_queue text;
begin
  perform pg_catalog.pg_advisory_xact_lock(voicegate.erasure_lock(p_user));

  insert into voicegate.erasures (user_id, requested_by, cascaded)
  values (p_user, left(p_requested_by, 200), jsonb_build_object(
    'voices', (select count(*) from public.voices where owner_id = p_user),
    'voice_clone_attempts', (select count(*) from public.voice_clone_attempts where owner_id = p_user),
    'voice_samples', (select count(*) from public.voice_samples where owner_id = p_user),
    'voice_consents', (select count(*) from public.voice_consents where owner_id = p_user),
    'reflections', (select count(*) from public.reflections where owner_id = p_user),
    'synthesis_jobs', (select count(*) from public.synthesis_jobs where owner_id = p_user),
    'speech_streams', (select count(*) from public.speech_streams where owner_id = p_user),
    'webhook_endpoints', (select count(*) from public.webhook_endpoints where owner_id = p_user)))
  on conflict (user_id) do nothing
  returning id into v_id;
  if v_id is null then
    select e.id into v_id from voicegate.erasures e where e.user_id = p_user;
    return v_id;
  end if;

  insert into voicegate.erasure_items (erasure_id, kind, target, ref, region)
  select v_id, t.kind, t.target, t.ref, t.region from voicegate.erasure_targets(p_user) t;

  v_in_flight :=
    (select count(*) from public.voice_clone_attempts a where a.owner_id = p_user and a.lease_expires_at > now())
    + (select count(*) from public.synthesis_jobs j where j.owner_id = p_user and j.lease_expires_at > now());
  v_ids := array(
    select a.id::text from public.voice_clone_attempts a where a.owner_id = p_user
    union all select j.id::text from public.synthesis_jobs j where j.owner_id = p_user
    union all select s.id::text from public.voice_samples s where s.owner_id = p_user
    union all select v.id::text from public.voices v where v.owner_id = p_user
    union all select c.id::text from public.voice_consents c where c.owner_id = p_user
    union all select r.id::text from public.reflections r where r.owner_id = p_user
    union all select w.id::text from public.webhook_endpoints w where w.owner_id = p_user
    union all select p_user::text);
  for v_queue in
    select q.queue_name from voicegate.work_queues q where q.queue_name <> 'user_erasure'
    union all select 'voice_dead_letter'
  loop
    -- A message a worker is handling (read, and still invisible) is work in flight: counted, so that the erasure
    -- waits for it; deleting it only keeps it from being handled again.
    execute format(
      'with gone as (delete from pgmq.%I m'
      '               where exists (select from jsonb_path_query(m.message, ''strict $.**'') v'
      '                              where v #>> ''{}'' = any ($1))'
      '              returning m.read_ct > 0 and m.vt > now() as held)'
      ' select count(*) filter (where held) from gone', 'q_' || v_queue)
      using v_ids into v_held;
    v_in_flight := v_in_flight + v_held;
  end loop;
  update voicegate.erasures set in_flight = v_in_flight where id = v_id;

  -- The audit events about the user's rows keep their action and time; what they said goes.
  update voicegate.audit_events e
     set subject_id = 'erased:' || v_id, detail = jsonb_build_object('erasure_id', v_id)
    from (select 'attempt', a.id::text from public.voice_clone_attempts a where a.owner_id = p_user
          union all select 'reflection', r.id::text from public.reflections r where r.owner_id = p_user
          union all select 'voice', v.id::text from public.voices v where v.owner_id = p_user
          union all select 'voice_sample', s.id::text from public.voice_samples s where s.owner_id = p_user
          union all select 'voice_consent', c.id::text from public.voice_consents c where c.owner_id = p_user
          union all select 'synthesis_job', j.id::text from public.synthesis_jobs j where j.owner_id = p_user
          union all
          select 'provider_voice', i.target || ':' || i.ref
            from voicegate.erasure_items i where i.erasure_id = v_id and i.kind = 'provider_voice') s (kind, id)
   where e.subject_type = s.kind and e.subject_id = s.id;

  perform pgmq.send('user_erasure', jsonb_build_object('erasureId', v_id));
  return v_id;
end
$$;

-- The final scan of an erasure: every row of voicegate's schemas, pgmq's and `public` whose text names the user (the
-- erasure's own rows aside), by table; and every object in their folder of any bucket, or named by one of the
-- erasure's items. A sequential scan of each table: it reads the whole database once.
create function voicegate.erasure_leftovers(p_erasure uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user uuid;
  v_rows jsonb := '{}';
  v_n bigint;
  v_table record;
begin
  select e.user_id into v_user from voicegate.erasures e where e.id = p_erasure;
  if v_user is null then
    raise exception using errcode = 'VG404', message = 'No such erasure.';
  end if;
  for v_table in
    select n.nspname as schema_name, c.relname as table_name
      from pg_catalog.pg_class c
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where c.relkind = 'r' and n.nspname in ('public', 'voicegate', 'pgmq')
       and (n.nspname, c.relname) not in (('voicegate', 'erasures'), ('voicegate', 'erasure_items'))
     order by 1, 2
  loop
    execute format('select count(*) from %I.%I vg_scanned where vg_scanned::text like $1', v_table.schema_name,
                   v_table.table_name)
      using '%' || v_user::text || '%' into v_n;
    if v_n > 0 then
      v_rows := v_rows || jsonb_build_object(v_table.schema_name || '.' || v_table.table_name, v_n);
    end if;
  end loop;
  return jsonb_build_object(
    'rows', v_rows,
    'objects', coalesce(
      (select jsonb_agg(jsonb_build_object('bucket', o.bucket_id, 'name', o.name) order by o.bucket_id, o.name)
         from storage.objects o
        where o.name like v_user::text || '/%'
           or exists (select 1 from voicegate.erasure_items i
                       where i.erasure_id = p_erasure and i.kind = 'object' and i.target = o.bucket_id
                         and i.ref = o.name)),
      '[]'));
end
$$;

revoke all on function voicegate.erasure_leftovers(uuid) from public;
grant execute on function voicegate.erasure_leftovers(uuid) to service_role;
