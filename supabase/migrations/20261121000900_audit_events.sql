-- What operators (and the worker's maintenance sweeps) change outside the normal request and queue
-- paths, recorded in the transaction that makes the change: every requeue, failed attempt, repaired
-- mirror, purged sample, replayed dead letter and adopted or deleted provider voice.

set lock_timeout = '4s';

create table voicegate.audit_events (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  actor text not null check (length(actor) between 1 and 200),
  action text not null check (length(action) between 1 and 100),
  subject_type text not null check (length(subject_type) between 1 and 100),
  subject_id text not null check (length(subject_id) between 1 and 200),
  detail jsonb not null default '{}'::jsonb
);
create index audit_events_subject_idx on voicegate.audit_events (subject_type, subject_id, id);
create index audit_events_at_idx on voicegate.audit_events (at);

-- No user ever reads or writes it; the service appends and reads.
alter table voicegate.audit_events enable row level security;
revoke all on voicegate.audit_events from public;
grant select, insert on voicegate.audit_events to service_role;

create or replace function voicegate.record_audit(
  p_actor text,
  p_action text,
  p_subject_type text,
  p_subject_id text,
  p_detail jsonb default '{}'::jsonb
) returns bigint
language sql
security definer
set search_path = ''
as $$
  insert into voicegate.audit_events (actor, action, subject_type, subject_id, detail)
  values (p_actor, p_action, p_subject_type, p_subject_id, coalesce(p_detail, '{}'::jsonb))
  returning id;
$$;

-- A timestamp written into a mirror by anyone, or null when it is not one (drift, not an error).
create or replace function voicegate.try_timestamptz(p_value text) returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
begin
  return p_value::timestamptz;
exception when others then
  return null;
end
$$;

-- The mirror keys (plus `voice_id`, the reflection's column) in which a reflection disagrees with
-- its active attempt; empty when they agree. `updatedAt` is compared as a time, because its text
-- depends on the writing session's TimeZone.
create or replace function voicegate.mirror_drift(
  p_voice jsonb,
  p_voice_id uuid,
  p_attempt public.voice_clone_attempts
) returns text[]
language sql
stable
set search_path = ''
as $$
  with expected as (select voicegate.attempt_mirror(p_attempt) as m)
  select coalesce(array_agg(k order by k), '{}')
    from (
      select k
        from expected, jsonb_object_keys(expected.m || coalesce(p_voice, '{}'::jsonb)) k
       where case when k = 'updatedAt'
                  then voicegate.try_timestamptz(p_voice ->> 'updatedAt') is distinct from p_attempt.updated_at
                  else (p_voice -> k) is distinct from (expected.m -> k) end
      union all
      select 'voice_id' where p_voice_id is distinct from p_attempt.voice_id
    ) drift;
$$;

-- Rewrite a drifted mirror through the lifecycle: a transition with no change bumps the attempt's
-- version and republishes it (mirror and voice row). Re-checks under the attempt's row lock, so a
-- mirror that a worker has meanwhile rewritten is left alone. Outcomes: repaired, consistent,
-- skipped_locked, no_active_attempt.
create or replace function voicegate.repair_voice_mirror(p_reflection_id uuid, p_actor text, p_detail jsonb)
returns table (outcome text, attempt_id uuid, drift text[])
language plpgsql
security definer
set search_path = ''
as $$
declare
  a public.voice_clone_attempts;
  r public.reflections;
  fields text[];
begin
  select * into a from public.voice_clone_attempts
   where reflection_id = p_reflection_id and is_active
   for update skip locked;
  if not found then
    if exists (select from public.voice_clone_attempts where reflection_id = p_reflection_id and is_active) then
      return query select 'skipped_locked'::text, null::uuid, null::text[];
    else
      return query select 'no_active_attempt'::text, null::uuid, null::text[];
    end if;
    return;
  end if;
  select * into r from public.reflections where id = p_reflection_id;
  fields := voicegate.mirror_drift(r.voice, r.voice_id, a);
  if cardinality(fields) = 0 then
    return query select 'consistent'::text, a.id, fields;
    return;
  end if;
  perform voicegate.transition_attempt(a.id, a.version, p_actor);
  perform voicegate.record_audit(p_actor, 'voice_mirror.repair', 'reflection', p_reflection_id::text,
    coalesce(p_detail, '{}'::jsonb) || jsonb_build_object(
      'attempt_id', a.id, 'drift', to_jsonb(fields), 'mirror_before', r.voice, 'voice_id_before', r.voice_id));
  return query select 'repaired'::text, a.id, fields;
end
$$;

-- Recover one stale attempt (backend/domain/recovery.py selects them):
--   requeue: an expired lease goes back to `queued` (retry counted, reason recorded); a queued attempt
--            gets a version bump, so two concurrent recoveries cannot both enqueue it; then one
--            VOICE_CLONE_PROCESS message is sent.
--   fail:    the attempt fails with `p_code` and the user-safe `p_message`.
-- Skips (never raises) when the attempt is locked, has moved on since it was selected
-- (`p_expected_version`), or holds a live lease. Outcomes: requeued, failed, skipped_locked,
-- skipped_changed, skipped_live_lease, skipped_not_open.
create or replace function voicegate.recover_attempt(
  p_attempt_id uuid,
  p_expected_version integer,
  p_actor text,
  p_action text,
  p_code text,
  p_message text,
  p_detail jsonb default '{}'::jsonb
) returns table (outcome text, version integer, msg_id bigint)
language plpgsql
security definer
set search_path = ''
as $$
declare
  cur public.voice_clone_attempts;
  nxt public.voice_clone_attempts;
  sent bigint;
begin
  if p_action not in ('requeue', 'fail') then
    raise exception 'unknown recovery action "%"', p_action using errcode = 'VG400';
  end if;
  select * into cur from public.voice_clone_attempts where id = p_attempt_id for update skip locked;
  if not found then
    return query select 'skipped_locked'::text, null::integer, null::bigint;
    return;
  end if;
  if cur.version <> p_expected_version then
    return query select 'skipped_changed'::text, cur.version, null::bigint;
    return;
  end if;
  if cur.status not in ('queued', 'processing', 'verifying') then
    return query select 'skipped_not_open'::text, cur.version, null::bigint;
    return;
  end if;
  if cur.status <> 'queued' and cur.lease_expires_at > now() then
    return query select 'skipped_live_lease'::text, cur.version, null::bigint;
    return;
  end if;

  if p_action = 'fail' then
    nxt := voicegate.transition_attempt(cur.id, cur.version, p_actor, 'failed',
      p_changes => jsonb_build_object('last_error_code', p_code, 'last_error_message', p_message));
  elsif cur.status = 'queued' then
    nxt := voicegate.transition_attempt(cur.id, cur.version, p_actor);
  else
    nxt := voicegate.transition_attempt(cur.id, cur.version, p_actor, 'queued',
      p_changes => jsonb_build_object(
        'last_error_code', p_code, 'last_error_message', p_message, 'increment_retry', true));
  end if;
  if p_action = 'requeue' then
    select * into sent from pgmq.send('voice_clone_process', jsonb_build_object(
      'type', 'VOICE_CLONE_PROCESS',
      'attemptId', nxt.id,
      'reflectionId', nxt.reflection_id,
      'version', nxt.version));
  end if;
  perform voicegate.record_audit(p_actor, 'attempt.' || p_action, 'attempt', cur.id::text,
    coalesce(p_detail, '{}'::jsonb) || jsonb_strip_nulls(jsonb_build_object(
      'from_status', cur.status, 'to_status', nxt.status, 'version', nxt.version, 'code', p_code,
      'lease_owner', cur.lease_owner, 'lease_expires_at', cur.lease_expires_at, 'msg_id', sent)));
  return query select (case p_action when 'fail' then 'failed' else 'requeued' end)::text, nxt.version, sent;
end
$$;

revoke all on function voicegate.record_audit(text, text, text, text, jsonb) from public;
revoke all on function voicegate.try_timestamptz(text) from public;
revoke all on function voicegate.mirror_drift(jsonb, uuid, public.voice_clone_attempts) from public;
revoke all on function voicegate.repair_voice_mirror(uuid, text, jsonb) from public;
revoke all on function voicegate.recover_attempt(uuid, integer, text, text, text, text, jsonb) from public;
grant execute on function voicegate.record_audit(text, text, text, text, jsonb) to service_role;
grant execute on function voicegate.try_timestamptz(text) to service_role;
grant execute on function voicegate.mirror_drift(jsonb, uuid, public.voice_clone_attempts) to service_role;
grant execute on function voicegate.repair_voice_mirror(uuid, text, jsonb) to service_role;
grant execute on function voicegate.recover_attempt(uuid, integer, text, text, text, text, jsonb) to service_role;
