set lock_timeout = '4s';

-- A user who is erased takes everything with them. Two ways start it, and they are one: Supabase Auth's admin
-- deleteUser deletes the auth.users row itself (voicegate is not asked), and `voicegate ops erase-user --apply`
-- deletes that row the same way (voicegate.erase_user). `on delete cascade` removes the user's rows in that very
-- statement, so what lives outside Postgres (voices at the providers, objects in Storage) must be written down
-- before it: a BEFORE DELETE trigger on auth.users snapshots it into an erasure and its items (keyed by the user's
-- id with no foreign key, so they outlive the cascade) and sends the erasure's message in the same transaction.
-- The `user_erasure` consumer then deletes each item, records each item's state as it goes (so it resumes where
-- it stopped), erases what the cascade leaves, and closes the erasure with a receipt and an audit tombstone.

-- A token whose user is gone. Every user transaction's opening statement calls this (backend/db/units.py): a
-- signed, unexpired token outlives its user by up to its expiry, and without it the first write of such a
-- request met a foreign key (a 500) while its reads answered as if for a user with nothing. One primary-key
-- lookup, in a statement that is sent anyway. A soft-deleted user (deleteUser's shouldSoftDelete) is gone too.
create function voicegate.require_user() returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from auth.users u where u.id = auth.uid() and u.deleted_at is null) then
    raise exception using errcode = 'VG401', message = 'The account this token was issued for no longer exists.';
  end if;
end
$$;

revoke all on function voicegate.require_user() from public;
grant execute on function voicegate.require_user() to authenticated, service_role;

create table voicegate.erasures (
  id uuid primary key default gen_random_uuid(),
  -- No foreign key: the row outlives the user, and a second erasure of the same user finds it.
  user_id uuid not null unique,
  -- Who asked: the operator's actor, or the database role that deleted the auth.users row (Supabase Auth).
  requested_by text not null check (length(requested_by) between 1 and 200),
  state text not null default 'pending' check (state in ('pending', 'working', 'done', 'incomplete')),
  requested_at timestamptz not null default now(),
  -- The rows the cascade removed with the user, by table, counted just before it.
  cascaded jsonb not null default '{}',
  -- What the consumer erased that the cascade leaves (rows by table, audit events tombstoned), once it has.
  rows_erased jsonb,
  finished_at timestamptz,
  receipt jsonb,
  constraint erasure_finished check ((state in ('done', 'incomplete')) = (finished_at is not null))
);

alter table voicegate.erasures enable row level security;
revoke all on voicegate.erasures from public;
grant select, update on voicegate.erasures to service_role;

-- One thing outside Postgres to delete: a provider's voice (`target` the provider, `ref` its voice id, `region`
-- where the voice lives when the provider has regions) or a Storage object (`target` the bucket, `ref` its name).
create table voicegate.erasure_items (
  id bigint generated always as identity primary key,
  erasure_id uuid not null references voicegate.erasures (id) on delete cascade,
  kind text not null check (kind in ('provider_voice', 'object')),
  target text not null check (length(target) between 1 and 100),
  ref text not null check (length(ref) between 1 and 1024),
  region text check (length(region) <= 50),
  -- deleted: gone, confirmed; already_gone: the provider or Storage had none; refused: it would not delete it
  -- (the reason in last_error), reported on the receipt and never retried by itself.
  state text not null default 'pending' check (state in ('pending', 'deleted', 'already_gone', 'refused')),
  tries integer not null default 0 check (tries >= 0),
  last_error text check (length(last_error) <= 1000),
  done_at timestamptz,
  unique (erasure_id, kind, target, ref),
  constraint erasure_item_done check ((state = 'pending') = (done_at is null))
);

create index erasure_items_pending_idx on voicegate.erasure_items (erasure_id, id) where state = 'pending';

alter table voicegate.erasure_items enable row level security;
revoke all on voicegate.erasure_items from public;
grant select, update, delete on voicegate.erasure_items to service_role;

select pgmq.create('user_erasure');

create trigger voicegate_notify_insert after insert on pgmq.q_user_erasure
  for each statement execute function voicegate.notify_queue_insert();

-- As for the queues before it: only the service works the queues.
grant all on all tables in schema pgmq to service_role;
grant usage, select, update on all sequences in schema pgmq to service_role;

insert into voicegate.work_queues (queue_name) values ('user_erasure');

-- What an erasure of `p_user` takes outside Postgres: every provider voice any of the user's attempts, voices or
-- references ever named, and every object under the user's folder in any bucket or named by voicegate's rows
-- wherever it is. The items start_erasure writes, and a dry run's answer.
create function voicegate.erasure_targets(p_user uuid)
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
$$;

revoke all on function voicegate.erasure_targets(uuid) from public;
grant execute on function voicegate.erasure_targets(uuid) to service_role;

-- Snapshot `p_user`'s provider voices and objects into a new erasure and send its message; the existing
-- erasure's id when there is one already. Runs before the cascade, as whoever deletes the row (Supabase Auth's
-- role has no right on voicegate's tables: hence security definer).
create function voicegate.start_erasure(p_user uuid, p_requested_by text) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_prefix text := p_user::text || '/';
begin
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

revoke all on function voicegate.start_erasure(uuid, text) from public;

create function voicegate.erase_deleted_user() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- The operator's actor when voicegate.erase_user deletes the row; otherwise the role that deleted it.
  perform voicegate.start_erasure(
    old.id, coalesce(nullif(current_setting('voicegate.erasure_actor', true), ''), 'database:' || session_user));
  return old;
end
$$;

revoke all on function voicegate.erase_deleted_user() from public;

create trigger voicegate_erase_deleted_user before delete on auth.users
  for each row execute function voicegate.erase_deleted_user();

-- `voicegate ops erase-user --apply`: delete the auth.users row as Supabase Auth's admin deleteUser does, so the
-- trigger starts the erasure exactly as it does then; the erasure's id (the existing one when the user was erased
-- before), or null when there is neither such a user nor an erasure of them.
create function voicegate.erase_user(p_user uuid, p_actor text) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform set_config('voicegate.erasure_actor', p_actor, true);
  delete from auth.users where id = p_user;
  perform set_config('voicegate.erasure_actor', '', true);
  return (select e.id from voicegate.erasures e where e.user_id = p_user);
end
$$;

revoke all on function voicegate.erase_user(uuid, text) from public;
grant execute on function voicegate.erase_user(uuid, text) to service_role;

-- Who an operator means (an id or an e-mail address): the user's id, and whether the auth.users row is still
-- there; no row when neither a user nor an erasure has that id or address. The service role cannot read
-- auth.users itself.
create function voicegate.erasure_subject(p_who text)
returns table (user_id uuid, present boolean, email text)
language sql
stable
security definer
set search_path = ''
as $$
  select u.id, true, u.email::text
    from auth.users u
   where (p_who ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' and u.id = p_who::uuid)
      or lower(u.email) = lower(p_who)
  union all
  select e.user_id, false, null
    from voicegate.erasures e
   where p_who ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' and e.user_id = p_who::uuid
     and not exists (select 1 from auth.users u where u.id = e.user_id)
$$;

revoke all on function voicegate.erasure_subject(text) from public;
grant execute on function voicegate.erasure_subject(text) to service_role;

-- What the cascade leaves of an erased user, erased: rows of any table with an owner id (one added later
-- included), rows keyed by the user's folder, queued messages and recorded errors that name the user, and the
-- audit events that name them, each kept as a tombstone (its action and time) without what it said. Refuses
-- while the user's auth.users row is there. Answers the counts, by what was erased.
create function voicegate.erase_user_rows(p_erasure uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user uuid;
  v_text text;
  v_counts jsonb := '{}';
  v_n bigint;
  v_queued bigint := 0;
  t record;
begin
  select e.user_id into v_user from voicegate.erasures e where e.id = p_erasure;
  if v_user is null then
    raise exception using errcode = 'VG404', message = 'No such erasure.';
  end if;
  if exists (select 1 from auth.users u where u.id = v_user) then
    raise exception using errcode = 'VG409', message = 'The user is still there.';
  end if;
  v_text := v_user::text;
  for t in
    select c.table_schema, c.table_name
      from information_schema.columns c
      join information_schema.tables tb
        on tb.table_schema = c.table_schema and tb.table_name = c.table_name and tb.table_type = 'BASE TABLE'
     where c.table_schema in ('public', 'voicegate') and c.column_name = 'owner_id' and c.data_type = 'uuid'
     order by c.table_schema, c.table_name
  loop
    execute format('delete from %I.%I where owner_id = $1', t.table_schema, t.table_name) using v_user;
    get diagnostics v_n = row_count;
    if v_n > 0 then
      v_counts := v_counts || jsonb_build_object(t.table_schema || '.' || t.table_name, v_n);
    end if;
  end loop;

  delete from voicegate.service_written_objects where name like v_text || '/%';
  get diagnostics v_n = row_count;
  if v_n > 0 then
    v_counts := v_counts || jsonb_build_object('voicegate.service_written_objects', v_n);
  end if;
  delete from voicegate.service_object_writes where name like v_text || '/%';
  get diagnostics v_n = row_count;
  if v_n > 0 then
    v_counts := v_counts || jsonb_build_object('voicegate.service_object_writes', v_n);
  end if;
  delete from voicegate.queue_message_errors where error like '%' || v_text || '%';
  get diagnostics v_n = row_count;
  if v_n > 0 then
    v_counts := v_counts || jsonb_build_object('voicegate.queue_message_errors', v_n);
  end if;

  -- Messages still queued (or archived) that carry the user's id; the erasure's own queue carries none.
  for t in
    select q.queue_name from voicegate.work_queues q where q.queue_name <> 'user_erasure'
    union all select 'voice_dead_letter'
  loop
    execute format('delete from pgmq.%I where message::text like $1', 'q_' || t.queue_name)
      using '%' || v_text || '%';
    get diagnostics v_n = row_count;
    v_queued := v_queued + v_n;
    execute format('delete from pgmq.%I where message::text like $1', 'a_' || t.queue_name)
      using '%' || v_text || '%';
    get diagnostics v_n = row_count;
    v_queued := v_queued + v_n;
  end loop;
  if v_queued > 0 then
    v_counts := v_counts || jsonb_build_object('queue_messages', v_queued);
  end if;

  update voicegate.audit_events e
     set subject_id = 'erased:' || p_erasure,
         detail = jsonb_build_object('erasure_id', p_erasure),
         actor = case when e.actor like '%' || v_text || '%' then 'erased' else e.actor end
   where e.action <> 'user.erase'
     and (e.subject_id like '%' || v_text || '%' or e.detail::text like '%' || v_text || '%'
          or e.actor like '%' || v_text || '%');
  get diagnostics v_n = row_count;
  v_counts := v_counts || jsonb_build_object('audit_events_tombstoned', v_n);
  return v_counts;
end
$$;

revoke all on function voicegate.erase_user_rows(uuid) from public;
grant execute on function voicegate.erase_user_rows(uuid) to service_role;
