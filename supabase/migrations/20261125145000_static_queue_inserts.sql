-- The messages a clone attempt's moves queue, inserted by statements planned once per session (issue 29), and
-- its lease made by one statement. What the functions leave is unchanged: the same rows, events, messages
-- and mirror, in the same order.
--
-- * pgmq.send(queue, message) is a SQL function that calls a PL/pgSQL one, which builds its INSERT with
--   format() and runs it with EXECUTE: the INSERT is parsed and planned again on every message. The four
--   messages sent on an attempt's path (its VOICE_CLONE_PROCESS, its VOICE_PREVIEW, the synthesis jobs
--   waiting on it, its webhook event) are now inserted into their queue's table as pgmq.send inserts
--   them: `vt` now (clock_timestamp()), the message, and every other column left to its default, as
--   pgmq.send leaves them (msg_id, read_ct, enqueued_at, headers and, from pgmq 1.8.1, last_read_at).
--   The queue's insert trigger (voicegate.notify_queue_insert) fires as before.
--   tests/integration/test_queue_inserts.py holds each of these queues to that: a message inserted so
--   reads back from pgmq.read as one sent with pgmq.send, and no column without a default is left out.
--   Each is one INSERT … VALUES per message, made only when there is a message to send: the queues'
--   insert trigger is a statement trigger (20261122115131), which an INSERT … SELECT of no rows fires too,
--   waking every consumer of the queue for nothing.
-- * A lease read the attempt `for update`, then updated it. One UPDATE whose condition is the attempt being
--   `queued` and due does both: a duplicate message read by another worker waits on the row's lock, then
--   finds the attempt no longer queued and leases nothing, as before.
-- * complete_attempt checked its changes' keys with a query and a loop; a jsonb expression checks them now.
-- * after_attempt_insert recorded its event through voicegate.record_attempt_event, a SQL function, which
--   PostgreSQL before 18 plans again on every call; it inserts the event itself now.
--
-- Measured (bench/schema_cpu.py --since 20261125145000, the bare equivalent's statements on both schemas,
-- chunk beside chunk, 2 cores): with the project's webhook endpoint configured, an attempt's completion
-- costs the server 0.928 and 0.957 of what it did, its lease 0.969 and 0.966, all its statements 0.954 and
-- 0.965 (two runs); without one, 1.016 in all (no difference this bench can tell).

set lock_timeout = '4s';

create or replace function voicegate.after_attempt_insert() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.voice_clone_attempt_events (attempt_id, owner_id, dimension, from_state, to_state, actor, detail)
  values (new.id, new.owner_id, 'status', null, new.status, 'insert', jsonb_build_object('source', new.source));
  insert into pgmq.q_voice_clone_process (vt, message)
  values (clock_timestamp(), jsonb_build_object(
    'type', 'VOICE_CLONE_PROCESS',
    'attemptId', new.id,
    'reflectionId', new.reflection_id,
    'version', new.version));
  perform voicegate.publish_attempt(new);
  return null;
end
$$;

create or replace function voicegate.read_and_lease_attempts(
  p_queue text, p_vt integer, p_qty integer, p_lease_owner text, p_lease_seconds integer
) returns table (msg_id bigint, read_ct integer, enqueued_at timestamptz, vt timestamptz, message jsonb, leased jsonb)
language plpgsql
security definer
set search_path = ''
as $$
declare
  delivered record;
  nxt public.voice_clone_attempts;
  actor constant text := 'worker:' || p_lease_owner;
begin
  if not exists (select from voicegate.attempt_moves
                  where dimension = 'status' and from_state = 'queued' and to_state = 'processing') then
    raise exception 'illegal status transition queued -> processing' using errcode = 'VG422';
  end if;
  for delivered in select r.msg_id, r.read_ct, r.enqueued_at, r.vt, r.message from pgmq.read(p_queue, p_vt, p_qty) r
  loop
    msg_id := delivered.msg_id;
    read_ct := delivered.read_ct;
    enqueued_at := delivered.enqueued_at;
    vt := delivered.vt;
    message := delivered.message;
    leased := null;
    -- A malformed message is the worker's to fail (and, in time, dead-letter), not the whole read's.
    if delivered.message ->> 'attemptId' ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' then
      -- One statement leases it: a duplicate message read by another worker waits on the row's lock here,
      -- then finds the attempt no longer queued and leases nothing.
      update public.voice_clone_attempts a set
        status = 'processing',
        lease_owner = p_lease_owner,
        lease_expires_at = now() + make_interval(secs => greatest(1, coalesce(p_lease_seconds, 60))),
        version = a.version + 1,
        updated_at = now()
       where a.id = (delivered.message ->> 'attemptId')::uuid
         and a.status = 'queued' and (a.next_retry_at is null or a.next_retry_at <= now())
      returning a.* into nxt;
      if found then
        insert into public.voice_clone_attempt_events (attempt_id, owner_id, dimension, from_state, to_state, actor, detail)
        values (nxt.id, nxt.owner_id, 'status', 'queued', 'processing', actor,
                jsonb_strip_nulls(jsonb_build_object('error', nxt.last_error_code, 'late', not nxt.is_active)));
        perform voicegate.publish_attempt(nxt);
        leased := to_jsonb(nxt);
      end if;
    end if;
    return next;
  end loop;
end
$$;

create or replace function voicegate.complete_attempt(
  p_attempt_id uuid,
  p_actor text,
  p_lease_owner text,
  p_changes jsonb default '{}'::jsonb
) returns public.voice_clone_attempts
language plpgsql
security definer
set search_path = ''
as $$
declare
  cur public.voice_clone_attempts;
  nxt public.voice_clone_attempts;
  verified_from text;
  in_sync boolean;
  illegal record;
begin
  p_changes := coalesce(p_changes, '{}'::jsonb);
  if p_changes - array['provider_voice_id', 'provider_target_model', 'provider_request_id',
                       'provider_metadata'] <> '{}'::jsonb then
    raise exception 'unknown attempt change "%"',
      (select min(k) from jsonb_object_keys(p_changes - array['provider_voice_id', 'provider_target_model',
                                                             'provider_request_id', 'provider_metadata']) k)
      using errcode = 'VG400';
  end if;

  select * into cur from public.voice_clone_attempts where id = p_attempt_id for no key update;
  if not found then
    raise exception 'attempt % not found', p_attempt_id using errcode = 'VG404';
  end if;
  if cur.lease_owner is distinct from p_lease_owner or cur.lease_expires_at <= now() then
    raise exception 'attempt % is not leased to %', p_attempt_id, p_lease_owner using errcode = 'VG423';
  end if;

  nxt := cur;
  verified_from := case when cur.status = 'processing' then 'verifying' else cur.status end;
  -- The first of this call's moves that is not allowed, in the order they are made.
  select m.dimension, m.from_state, m.to_state into illegal
    from (values (1, cur.status = 'processing', 'status', cur.status, 'verifying'),
                 (2, true, 'status', verified_from, 'ready'),
                 (3, nxt.is_active, 'runtime', cur.runtime_status, 'syncing')) as m(n, made, dimension, from_state, to_state)
   where m.made
     and not exists (select from voicegate.attempt_moves a
                      where a.dimension = m.dimension and a.from_state = m.from_state and a.to_state = m.to_state)
   order by m.n
   limit 1;
  if found then
    raise exception 'illegal % transition % -> % for attempt %', illegal.dimension, illegal.from_state,
      illegal.to_state, p_attempt_id using errcode = 'VG422';
  end if;

  if cur.status = 'processing' then
    nxt.version := nxt.version + 1;
  end if;
  nxt.status := 'ready';
  nxt.lease_owner := null;
  nxt.lease_expires_at := null;
  nxt.finished_at := now();
  nxt.last_error_code := null;
  nxt.last_error_message := null;
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
  nxt.version := nxt.version + 1;
  if nxt.is_active then
    -- Synced is what publishing the attempt makes true; checked below, undone when it is not.
    nxt.runtime_status := 'synced';
    nxt.version := nxt.version + 1;
  end if;
  nxt.updated_at := now();

  update public.voice_clone_attempts set
    status = nxt.status,
    runtime_status = nxt.runtime_status,
    lease_owner = null,
    lease_expires_at = null,
    provider_voice_id = nxt.provider_voice_id,
    provider_target_model = nxt.provider_target_model,
    provider_request_id = nxt.provider_request_id,
    provider_metadata = nxt.provider_metadata,
    last_error_code = null,
    last_error_message = null,
    version = nxt.version,
    updated_at = nxt.updated_at,
    finished_at = nxt.finished_at
  where id = p_attempt_id;

  if nxt.is_active then
    perform voicegate.publish_attempt(nxt);
    select v.provider_voice_id = nxt.provider_voice_id and v.tts_provider = nxt.provider into in_sync
      from public.voices v where v.id = nxt.voice_id;
    in_sync := coalesce(in_sync, false);
    if not in_sync then
      nxt.runtime_status := 'sync_failed';
      update public.voice_clone_attempts set runtime_status = nxt.runtime_status where id = p_attempt_id;
      perform voicegate.publish_attempt(nxt);
    end if;
  end if;

  insert into public.voice_clone_attempt_events (attempt_id, owner_id, dimension, from_state, to_state, actor, detail)
  select nxt.id, nxt.owner_id, e.dimension, e.from_state, e.to_state, p_actor, e.detail
    from (values
      (1, cur.status = 'processing', 'status', 'processing', 'verifying',
       jsonb_strip_nulls(jsonb_build_object('error', cur.last_error_code, 'late', not nxt.is_active))),
      (2, true, 'status', verified_from, 'ready', jsonb_build_object('late', not nxt.is_active)),
      (3, nxt.is_active, 'runtime', cur.runtime_status, 'syncing', '{}'::jsonb),
      (4, nxt.is_active, 'runtime', 'syncing', case when in_sync then 'synced' else 'sync_failed' end, '{}'::jsonb)
    ) as e(n, made, dimension, from_state, to_state, detail)
   where e.made
   order by e.n;

  if in_sync and nxt.preview_status = 'pending' then
    -- As backend/queues.py's preview_message spells it.
    insert into pgmq.q_voice_preview (vt, message)
    values (clock_timestamp(),
            jsonb_build_object('type', 'VOICE_PREVIEW', 'attemptId', nxt.id, 'version', nxt.version));
  end if;
  return nxt;
end
$$;

create or replace function voicegate.attempt_settled() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  job uuid;
begin
  if new.status = 'ready' and new.provider_voice_id is not null then
    insert into public.voice_provider_references
      (voice_id, owner_id, provider, provider_voice_id, target_model, attempt_id, reason)
    values (new.voice_id, new.owner_id, new.provider, new.provider_voice_id, new.provider_target_model, new.id,
            new.source)
    on conflict (voice_id, provider, provider_voice_id) do update
       set target_model = coalesce(excluded.target_model, public.voice_provider_references.target_model),
           last_verified_at = now(),
           gone_at = null,
           gone_reason = null;
  end if;

  -- One insert per job, none without: an insert wakes the queue's consumers (a statement trigger) even
  -- when it inserts no row.
  for job in select j.id from public.synthesis_jobs j where j.attempt_id = new.id and j.status = 'queued' loop
    insert into pgmq.q_voice_synthesis (vt, message) values (clock_timestamp(), jsonb_build_object('jobId', job));
  end loop;

  if new.status in ('ready', 'failed') and new.is_active then
    perform voicegate.emit_webhook('voice.' || new.status, new.owner_id, jsonb_build_object(
      'voiceId', new.voice_id,
      'attemptId', new.id,
      'reflectionId', new.reflection_id,
      'provider', new.provider,
      'providerVoiceId', new.provider_voice_id,
      'targetModel', new.provider_target_model,
      'error', case when new.status = 'failed' and new.last_error_code is not null
                    then jsonb_build_object('code', new.last_error_code, 'message', new.last_error_message) end));
  end if;
  return null;
end
$$;

create or replace function voicegate.emit_webhook(p_type text, p_owner uuid, p_data jsonb) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  project boolean := coalesce((select configured from voicegate.project_webhook), true);
  event jsonb;
  endpoint uuid;
begin
  if not project and not exists (select from public.webhook_endpoints e
                                  where e.owner_id = p_owner and p_type = any (e.events) and e.disabled_at is null) then
    return;
  end if;
  event := jsonb_build_object(
    'webhookId', 'msg_' || replace(gen_random_uuid()::text, '-', ''),
    'type', p_type,
    'timestamp', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'data', jsonb_build_object('ownerId', p_owner) || p_data);
  if project then
    insert into pgmq.q_webhook_delivery (vt, message)
    values (clock_timestamp(), event || jsonb_build_object('endpointId', null));
  end if;
  for endpoint in select e.id from public.webhook_endpoints e
                   where e.owner_id = p_owner and p_type = any (e.events) and e.disabled_at is null loop
    insert into pgmq.q_webhook_delivery (vt, message)
    values (clock_timestamp(), event || jsonb_build_object('endpointId', endpoint));
  end loop;
end
$$;
