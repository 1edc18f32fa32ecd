-- The attempt lifecycle (DESIGN.md §2, invariants 1-3, 6).
--
-- Every change to an attempt goes through voicegate.transition_attempt, which locks the row, checks the
-- move against voicegate.attempt_moves and the caller's version (and lease, for workers), applies it,
-- appends events and, when the attempt is its reflection's active one, rewrites the mirror in the same
-- transaction. Errors carry their own SQLSTATEs so callers can tell them apart:
--   VG404 attempt not found     VG409 stale version     VG423 lease not held
--   VG422 illegal transition    VG400 bad change        VG403 owner mismatch

set lock_timeout = '4s';

create table voicegate.attempt_moves (
  dimension text not null check (dimension in ('status', 'runtime', 'preview')),
  from_state text not null,
  to_state text not null,
  primary key (dimension, from_state, to_state)
);

insert into voicegate.attempt_moves (dimension, from_state, to_state) values
  ('status', 'queued', 'processing'),
  ('status', 'queued', 'failed'),
  ('status', 'queued', 'canceled'),
  ('status', 'queued', 'superseded'),
  -- Back to queued: a transient failure scheduled for retry, or a lease that expired.
  ('status', 'processing', 'queued'),
  ('status', 'processing', 'verifying'),
  ('status', 'processing', 'failed'),
  ('status', 'processing', 'canceled'),
  ('status', 'processing', 'superseded'),
  ('status', 'verifying', 'queued'),
  ('status', 'verifying', 'ready'),
  ('status', 'verifying', 'failed'),
  ('status', 'verifying', 'canceled'),
  ('status', 'verifying', 'superseded'),
  ('status', 'ready', 'superseded'),
  -- Late results of a worker that was already working when the attempt was superseded: recorded on
  -- the (inactive) attempt so its provider voice is never lost, never mirrored.
  ('status', 'superseded', 'verifying'),
  ('status', 'superseded', 'ready'),
  ('status', 'superseded', 'failed'),
  ('runtime', 'pending', 'syncing'),
  ('runtime', 'syncing', 'synced'),
  ('runtime', 'syncing', 'sync_failed'),
  ('runtime', 'sync_failed', 'syncing'),
  ('preview', 'pending', 'generating'),
  ('preview', 'generating', 'pending'),
  ('preview', 'generating', 'ready'),
  ('preview', 'ready', 'generating'),
  ('preview', 'ready', 'completed');

grant select on voicegate.attempt_moves to service_role;

-- The `voice` JSON clients read (DESIGN.md §2).
create or replace function voicegate.attempt_mirror(a public.voice_clone_attempts) returns jsonb
language sql immutable
set search_path = ''
as $$
  select jsonb_build_object(
    'cloneStatus', a.status,
    'runtimeStatus', a.runtime_status,
    'previewRequired', a.preview_required,
    'previewStatus', a.preview_status,
    'provider', a.provider,
    'voiceId', a.voice_id,
    'providerVoiceId', a.provider_voice_id,
    'targetModel', a.provider_target_model,
    'attemptId', a.id,
    'lastError', case when a.last_error_code is null then null
                      else jsonb_build_object('code', a.last_error_code, 'message', a.last_error_message) end,
    'updatedAt', a.updated_at,
    'version', a.version)
$$;

-- Invariant 3: only the active attempt reaches the mirror and the voice row.
create or replace function voicegate.publish_attempt(a public.voice_clone_attempts) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not a.is_active then
    return;
  end if;
  if a.reflection_id is not null then
    update public.reflections
       set voice = voicegate.attempt_mirror(a), voice_id = a.voice_id
     where id = a.reflection_id;
  end if;
  -- A canceled active attempt leaves the voice as it was before the attempt started.
  if a.status = 'canceled' then
    return;
  end if;
  update public.voices v
     set status = case a.status when 'ready' then 'ready' when 'failed' then 'failed' else 'cloning' end,
         tts_provider = a.provider,
         provider_voice_id = coalesce(a.provider_voice_id, v.provider_voice_id),
         provider_target_model = coalesce(a.provider_target_model, v.provider_target_model),
         provider_request_id = coalesce(a.provider_request_id, v.provider_request_id),
         provider_metadata = case when a.provider_voice_id is null then v.provider_metadata
                                  else a.provider_metadata end
   where v.id = a.voice_id;
end
$$;

create or replace function voicegate.record_attempt_event(
  p_attempt public.voice_clone_attempts,
  p_dimension text,
  p_from text,
  p_to text,
  p_actor text,
  p_detail jsonb default '{}'::jsonb
) returns void
language sql
security definer
set search_path = ''
as $$
  insert into public.voice_clone_attempt_events (attempt_id, owner_id, dimension, from_state, to_state, actor, detail)
  values (p_attempt.id, p_attempt.owner_id, p_dimension, p_from, p_to, p_actor, coalesce(p_detail, '{}'::jsonb));
$$;

create or replace function voicegate.check_move(p_dimension text, p_from text, p_to text, p_attempt_id uuid)
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if not exists (select from voicegate.attempt_moves
                  where dimension = p_dimension and from_state = p_from and to_state = p_to) then
    raise exception 'illegal % transition % -> % for attempt %', p_dimension, p_from, p_to, p_attempt_id
      using errcode = 'VG422';
  end if;
end
$$;

create or replace function voicegate.transition_attempt(
  p_attempt_id uuid,
  p_expected_version integer,
  p_actor text,
  p_status text default null,
  p_runtime_status text default null,
  p_preview_status text default null,
  p_lease_owner text default null,
  p_changes jsonb default '{}'::jsonb
) returns public.voice_clone_attempts
language plpgsql
security definer
set search_path = ''
as $$
declare
  cur public.voice_clone_attempts;
  nxt public.voice_clone_attempts;
  change_key text;
  data_changed boolean := false;
  allowed_changes constant text[] := array[
    'enrolment_key', 'provider_voice_id', 'provider_target_model', 'provider_request_id',
    'provider_metadata', 'last_error_code', 'last_error_message', 'next_retry_at',
    'lease_owner', 'lease_seconds', 'increment_retry'];
begin
  p_changes := coalesce(p_changes, '{}'::jsonb);
  for change_key in select jsonb_object_keys(p_changes) loop
    if not change_key = any (allowed_changes) then
      raise exception 'unknown attempt change "%"', change_key using errcode = 'VG400';
    end if;
  end loop;

  select * into cur from public.voice_clone_attempts where id = p_attempt_id for update;
  if not found then
    raise exception 'attempt % not found', p_attempt_id using errcode = 'VG404';
  end if;
  if cur.version <> p_expected_version then
    raise exception 'attempt % is at version %, not %', p_attempt_id, cur.version, p_expected_version
      using errcode = 'VG409';
  end if;
  if p_lease_owner is not null
     and (cur.lease_owner is distinct from p_lease_owner or cur.lease_expires_at <= now()) then
    raise exception 'attempt % is not leased to %', p_attempt_id, p_lease_owner using errcode = 'VG423';
  end if;

  nxt := cur;

  if p_status is not null then
    perform voicegate.check_move('status', cur.status, p_status, p_attempt_id);
    nxt.status := p_status;
    if p_status = 'processing' and p_changes ->> 'lease_owner' is null then
      raise exception 'claiming attempt % needs a lease_owner', p_attempt_id using errcode = 'VG400';
    end if;
    if p_status in ('queued', 'ready', 'failed', 'canceled') then
      nxt.lease_owner := null;
      nxt.lease_expires_at := null;
    end if;
    if p_status in ('ready', 'failed', 'canceled', 'superseded') then
      nxt.finished_at := now();
    end if;
    if p_status = 'ready' then
      nxt.last_error_code := null;
      nxt.last_error_message := null;
    end if;
  end if;

  if p_runtime_status is not null then
    perform voicegate.check_move('runtime', cur.runtime_status, p_runtime_status, p_attempt_id);
    if nxt.status <> 'ready' then
      raise exception 'runtime of attempt % cannot move to % while it is %', p_attempt_id, p_runtime_status,
        nxt.status using errcode = 'VG422';
    end if;
    nxt.runtime_status := p_runtime_status;
  end if;

  if p_preview_status is not null then
    perform voicegate.check_move('preview', cur.preview_status, p_preview_status, p_attempt_id);
    if nxt.status <> 'ready' then
      raise exception 'preview of attempt % cannot move to % while it is %', p_attempt_id, p_preview_status,
        nxt.status using errcode = 'VG422';
    end if;
    nxt.preview_status := p_preview_status;
    if p_preview_status = 'completed' then
      nxt.preview_required := false;
    end if;
  end if;

  if p_changes ? 'enrolment_key' then
    if cur.enrolment_key <> '' and cur.enrolment_key <> p_changes ->> 'enrolment_key' then
      raise exception 'attempt % already has enrolment key %', p_attempt_id, cur.enrolment_key
        using errcode = 'VG400';
    end if;
    nxt.enrolment_key := p_changes ->> 'enrolment_key';
  end if;
  if p_changes ? 'provider_voice_id' then
    nxt.provider_voice_id := p_changes ->> 'provider_voice_id';
  end if;
  if p_changes ? 'provider_target_model' then
    nxt.provider_target_model := p_changes ->> 'provider_target_model';
  end if;
  if p_changes ? 'provider_request_id' then
    nxt.provider_request_id := p_changes ->> 'provider_request_id';
  end if;
  if p_changes ? 'provider_metadata' then
    nxt.provider_metadata := cur.provider_metadata || (p_changes -> 'provider_metadata');
  end if;
  if p_changes ? 'last_error_code' then
    nxt.last_error_code := p_changes ->> 'last_error_code';
    nxt.last_error_message := left(p_changes ->> 'last_error_message', 500);
  end if;
  if p_changes ? 'next_retry_at' then
    nxt.next_retry_at := (p_changes ->> 'next_retry_at')::timestamptz;
  end if;
  if p_changes ? 'increment_retry' and (p_changes ->> 'increment_retry')::boolean then
    nxt.retry_count := cur.retry_count + 1;
  end if;
  data_changed := (p_changes - 'lease_owner' - 'lease_seconds') <> '{}'::jsonb;

  if p_changes ? 'lease_owner' then
    if nxt.status not in ('processing', 'verifying', 'superseded') then
      raise exception 'attempt % cannot hold a lease while %', p_attempt_id, nxt.status using errcode = 'VG400';
    end if;
    nxt.lease_owner := p_changes ->> 'lease_owner';
    nxt.lease_expires_at := now()
      + make_interval(secs => greatest(1, coalesce((p_changes ->> 'lease_seconds')::integer, 60)));
  end if;

  nxt.version := cur.version + 1;
  nxt.updated_at := now();

  update public.voice_clone_attempts set
    status = nxt.status,
    runtime_status = nxt.runtime_status,
    preview_required = nxt.preview_required,
    preview_status = nxt.preview_status,
    retry_count = nxt.retry_count,
    next_retry_at = nxt.next_retry_at,
    lease_owner = nxt.lease_owner,
    lease_expires_at = nxt.lease_expires_at,
    enrolment_key = nxt.enrolment_key,
    provider_voice_id = nxt.provider_voice_id,
    provider_target_model = nxt.provider_target_model,
    provider_request_id = nxt.provider_request_id,
    provider_metadata = nxt.provider_metadata,
    last_error_code = nxt.last_error_code,
    last_error_message = nxt.last_error_message,
    version = nxt.version,
    updated_at = nxt.updated_at,
    finished_at = nxt.finished_at
  where id = p_attempt_id;

  if nxt.status <> cur.status then
    perform voicegate.record_attempt_event(nxt, 'status', cur.status, nxt.status, p_actor,
      jsonb_strip_nulls(jsonb_build_object('error', nxt.last_error_code, 'late', not nxt.is_active)));
  end if;
  if nxt.runtime_status <> cur.runtime_status then
    perform voicegate.record_attempt_event(nxt, 'runtime', cur.runtime_status, nxt.runtime_status, p_actor);
  end if;
  if nxt.preview_status <> cur.preview_status then
    perform voicegate.record_attempt_event(nxt, 'preview', cur.preview_status, nxt.preview_status, p_actor);
  end if;
  if data_changed and nxt.status = cur.status then
    perform voicegate.record_attempt_event(nxt, 'data', null, null, p_actor,
      jsonb_build_object('fields', (select jsonb_agg(k) from jsonb_object_keys(p_changes) k)));
  end if;

  perform voicegate.publish_attempt(nxt);
  return nxt;
end
$$;

-- Invariant 2: a new active attempt supersedes the reflection's current one. Done in the insert
-- itself so that every producer (API, SQL, legacy outbox) gets the same behaviour; the reflection
-- row lock serialises concurrent inserts, the partial unique index is the backstop.
create or replace function voicegate.before_attempt_insert() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  old_attempt public.voice_clone_attempts;
  reflection_owner uuid;
  voice_owner uuid;
begin
  select owner_id into voice_owner from public.voices where id = new.voice_id;
  if voice_owner is distinct from new.owner_id then
    raise exception 'voice % does not belong to the attempt owner', new.voice_id using errcode = 'VG403';
  end if;
  if new.status <> 'queued' or new.version <> 1 then
    raise exception 'a new attempt starts queued at version 1' using errcode = 'VG400';
  end if;
  if not new.preview_required then
    new.preview_status := 'not_required';
  end if;
  if new.reflection_id is null then
    return new;
  end if;

  select owner_id into reflection_owner from public.reflections where id = new.reflection_id for update;
  if reflection_owner is distinct from new.owner_id then
    raise exception 'reflection % does not belong to the attempt owner', new.reflection_id using errcode = 'VG403';
  end if;
  if not new.is_active then
    return new;
  end if;

  for old_attempt in
    select * from public.voice_clone_attempts
     where reflection_id = new.reflection_id and is_active
     for update
  loop
    update public.voice_clone_attempts
       set is_active = false,
           status = case when status in ('queued', 'processing', 'verifying', 'ready') then 'superseded'
                         else status end,
           finished_at = coalesce(finished_at, now()),
           version = version + 1,
           updated_at = now()
     where id = old_attempt.id;
    perform voicegate.record_attempt_event(old_attempt, 'active', 'true', 'false', 'supersede',
      jsonb_build_object('superseded_by', new.id));
    if old_attempt.status in ('queued', 'processing', 'verifying', 'ready') then
      perform voicegate.record_attempt_event(old_attempt, 'status', old_attempt.status, 'superseded', 'supersede',
        jsonb_build_object('superseded_by', new.id));
    end if;
  end loop;
  return new;
end
$$;

-- Invariant 6: inserting an attempt enqueues its processing in the inserting transaction.
create or replace function voicegate.after_attempt_insert() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform voicegate.record_attempt_event(new, 'status', null, new.status, 'insert',
    jsonb_build_object('source', new.source));
  perform pgmq.send('voice_clone_process', jsonb_build_object(
    'type', 'VOICE_CLONE_PROCESS',
    'attemptId', new.id,
    'reflectionId', new.reflection_id,
    'version', new.version));
  perform voicegate.publish_attempt(new);
  return null;
end
$$;

create trigger voice_clone_attempts_before_insert
  before insert on public.voice_clone_attempts
  for each row execute function voicegate.before_attempt_insert();

create trigger voice_clone_attempts_after_insert
  after insert on public.voice_clone_attempts
  for each row execute function voicegate.after_attempt_insert();

-- Invariant 4: launch readiness from the active attempt, with every blocking reason.
create or replace function public.voice_launch_readiness(p_reflection_id uuid)
returns table (reflection_id uuid, ready boolean, reasons text[])
language sql
stable
security invoker
set search_path = ''
as $$
  with r as (
    select r.id,
           a.id as attempt_id, a.status, a.runtime_status, a.preview_required
      from public.reflections r
      left join public.voice_clone_attempts a on a.reflection_id = r.id and a.is_active
     where r.id = p_reflection_id
  ), blocking as (
    select r.id,
           array_remove(array[
             case when r.attempt_id is null then 'no_voice' end,
             case when r.attempt_id is not null and r.status <> 'ready' then 'clone_not_ready' end,
             case when r.attempt_id is not null and r.runtime_status <> 'synced' then 'runtime_not_synced' end,
             case when r.attempt_id is not null and r.preview_required is true then 'preview_required' end
           ], null) as reasons
      from r
  )
  select id, cardinality(reasons) = 0, reasons from blocking
$$;

revoke all on all functions in schema voicegate from public;
grant execute on function voicegate.transition_attempt(uuid, integer, text, text, text, text, text, jsonb)
  to service_role;
grant execute on function voicegate.attempt_mirror(public.voice_clone_attempts) to service_role;
revoke all on function public.voice_launch_readiness(uuid) from public, anon;
grant execute on function public.voice_launch_readiness(uuid) to authenticated, service_role;
