-- `transition_attempt` locks the attempt `for no key update`, not `for update`: it changes no column a foreign key
-- refers to, so a row that refers to the attempt (a synthesis job, inserted with a key-share lock on it) need not
-- wait for the transition. With `for update`, a transition that went on to update the attempt's voice and an API
-- request that held that voice and inserted a job for the attempt waited on each other until Postgres broke the
-- deadlock, and the worker's message was read again.

set lock_timeout = '4s';

create or replace function voicegate.transition_attempt(p_attempt_id uuid, p_expected_version integer, p_actor text, p_status text DEFAULT NULL::text, p_runtime_status text DEFAULT NULL::text, p_preview_status text DEFAULT NULL::text, p_lease_owner text DEFAULT NULL::text, p_changes jsonb DEFAULT '{}'::jsonb) RETURNS public.voice_clone_attempts
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
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

  select * into cur from public.voice_clone_attempts where id = p_attempt_id for no key update;
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
