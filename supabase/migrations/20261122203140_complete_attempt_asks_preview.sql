-- The clone step's last call also asks for the preview (issue 15). An attempt that ends synced and still
-- needs its preview used to take a second statement in the worker's transaction (the VOICE_PREVIEW send);
-- sent here, in the same call, the step is one statement, which a worker runs alone (committed as it
-- runs, no BEGIN or COMMIT). The message is the one backend/queues.py's preview_message builds.

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
begin
  p_changes := coalesce(p_changes, '{}'::jsonb);
  for change_key in select jsonb_object_keys(p_changes) loop
    if not change_key = any (array['provider_voice_id', 'provider_target_model', 'provider_request_id',
                                   'provider_metadata']) then
      raise exception 'unknown attempt change "%"', change_key using errcode = 'VG400';
    end if;
  end loop;

  select * into cur from public.voice_clone_attempts where id = p_attempt_id for update;
  if not found then
    raise exception 'attempt % not found', p_attempt_id using errcode = 'VG404';
  end if;
  if cur.lease_owner is distinct from p_lease_owner or cur.lease_expires_at <= now() then
    raise exception 'attempt % is not leased to %', p_attempt_id, p_lease_owner using errcode = 'VG423';
  end if;

  nxt := cur;
  verified_from := cur.status;
  if cur.status = 'processing' then
    perform voicegate.check_move('status', 'processing', 'verifying', p_attempt_id);
    verified_from := 'verifying';
    nxt.version := nxt.version + 1;
  end if;
  perform voicegate.check_move('status', verified_from, 'ready', p_attempt_id);
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
    perform voicegate.check_move('runtime', cur.runtime_status, 'syncing', p_attempt_id);
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

  if cur.status = 'processing' then
    perform voicegate.record_attempt_event(nxt, 'status', 'processing', 'verifying', p_actor,
      jsonb_strip_nulls(jsonb_build_object('error', cur.last_error_code, 'late', not nxt.is_active)));
  end if;
  perform voicegate.record_attempt_event(nxt, 'status', verified_from, 'ready', p_actor,
    jsonb_build_object('late', not nxt.is_active));
  if not nxt.is_active then
    return nxt;
  end if;
  perform voicegate.record_attempt_event(nxt, 'runtime', cur.runtime_status, 'syncing', p_actor);
  perform voicegate.publish_attempt(nxt);

  select v.provider_voice_id = nxt.provider_voice_id and v.tts_provider = nxt.provider into in_sync
    from public.voices v where v.id = nxt.voice_id;
  if coalesce(in_sync, false) then
    perform voicegate.record_attempt_event(nxt, 'runtime', 'syncing', 'synced', p_actor);
    if nxt.preview_status = 'pending' then
      -- As backend/queues.py's preview_message spells it.
      perform pgmq.send('voice_preview',
        jsonb_build_object('type', 'VOICE_PREVIEW', 'attemptId', nxt.id, 'version', nxt.version));
    end if;
    return nxt;
  end if;
  nxt.runtime_status := 'sync_failed';
  update public.voice_clone_attempts set runtime_status = nxt.runtime_status where id = p_attempt_id;
  perform voicegate.record_attempt_event(nxt, 'runtime', 'syncing', 'sync_failed', p_actor);
  perform voicegate.publish_attempt(nxt);
  return nxt;
end
$$;
