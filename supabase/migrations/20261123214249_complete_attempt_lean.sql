-- The clone step's last call, written leaner (issue 29): what it leaves is unchanged (the row, the events in
-- the same order with the same details, the mirror, the voice row, the provider reference, the webhook and
-- VOICE_PREVIEW messages), with fewer statements and a weaker lock.
--
-- * Its moves are checked against voicegate.attempt_moves in one query (was one check_move call each), and
--   its events are written by one insert (was one record_attempt_event call each). The events come after
--   the update and the publishing, as before; nothing reads them in between.
-- * The attempt is locked `for no key update` (was `for update`): the call never changes the attempt's key,
--   so a synthesis job's insert for this attempt (a foreign-key check, `key share`) need not wait for it.
--
-- And voicegate.emit_webhook, which every voice, sample, job and launch event calls, builds its event (a
-- random id, a timestamp, the payload) only when some endpoint is there to receive it: with no project
-- endpoint and none of the owner's, it was a third of the cost of the clone step's `ready` move.

set lock_timeout = '4s';

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
  change_key text;
  in_sync boolean;
  illegal record;
begin
  p_changes := coalesce(p_changes, '{}'::jsonb);
  for change_key in select jsonb_object_keys(p_changes) loop
    if not change_key = any (array['provider_voice_id', 'provider_target_model', 'provider_request_id',
                                   'provider_metadata']) then
      raise exception 'unknown attempt change "%"', change_key using errcode = 'VG400';
    end if;
  end loop;

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
    perform pgmq.send('voice_preview',
      jsonb_build_object('type', 'VOICE_PREVIEW', 'attemptId', nxt.id, 'version', nxt.version));
  end if;
  return nxt;
end
$$;

-- As 20261122130224's, the event built only once it has somewhere to go.
create or replace function voicegate.emit_webhook(p_type text, p_owner uuid, p_data jsonb) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  project boolean := coalesce((select configured from voicegate.project_webhook), true);
  event jsonb;
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
    perform pgmq.send('webhook_delivery', event || jsonb_build_object('endpointId', null));
  end if;
  perform pgmq.send('webhook_delivery', event || jsonb_build_object('endpointId', e.id))
     from public.webhook_endpoints e
    where e.owner_id = p_owner and p_type = any (e.events) and e.disabled_at is null;
end
$$;
