-- Beside a voice's likeness, what a voice that is not the speaker's scored against the same samples: the bundled
-- `local` voice as it ships, speaking the same probe sentence (`likeness_baseline`; null for a voice that is not
-- English, which that voice does not speak). For the offline voice it is the voice before its adaptation to the
-- samples, so a reader sees what the clone added (issue 56: a `local` voice showed 0.76 against a threshold of
-- 0.74 where the bundled voice alone scored 0.71 against the same speaker). Judged with the likeness, once, and
-- carried wherever the likeness is: the attempt, the reflection's mirror (`likenessBaseline`), the voice and its
-- manifest.

set lock_timeout = '4s';

alter table public.voice_clone_attempts add column likeness_baseline public.likeness;

-- Users read it as they read the likeness (the voiceprint columns stay the service's).
grant select (likeness_baseline) on public.voice_clone_attempts to authenticated;

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
    'version', a.version,
    'likeness', a.likeness,
    'likenessThreshold', a.likeness_threshold,
    'likenessSource', a.likeness_source,
    'likenessError', a.likeness_error,
    'likenessBaseline', a.likeness_baseline)
$$;

-- Mirrors written before carry no `likenessBaseline`: rewritten as the function now spells them, so that the drift
-- check (voicegate.mirror_drift) finds nothing that is not drift. Every other key is as it was.
update public.reflections r
   set voice = voicegate.attempt_mirror(a)
  from public.voice_clone_attempts a
 where a.reflection_id = r.id and a.is_active and not (r.voice ? 'likenessBaseline');

-- The clone step's completion records the baseline with the probe's judgement, under the same rule.
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
  illegal integer;
  judged boolean;
  known constant text[] := array['provider_voice_id', 'provider_target_model', 'provider_request_id',
                                 'provider_metadata', 'likeness', 'likeness_threshold', 'likeness_source',
                                 'likeness_error', 'likeness_baseline'];
begin
  p_changes := coalesce(p_changes, '{}'::jsonb);
  if p_changes - known <> '{}'::jsonb then
    raise exception 'unknown attempt change "%"', (select min(k) from jsonb_object_keys(p_changes - known) k)
      using errcode = 'VG400';
  end if;

  select * into cur from public.voice_clone_attempts where id = p_attempt_id for no key update;
  if not found then
    raise exception 'attempt % not found', p_attempt_id using errcode = 'VG404';
  end if;
  if cur.lease_owner is distinct from p_lease_owner or cur.lease_expires_at <= now() then
    raise exception 'attempt % is not leased to %', p_attempt_id, p_lease_owner using errcode = 'VG423';
  end if;
  -- A judgement (it always names what was judged) is kept only while the attempt has none: the first stands.
  judged := p_changes ? 'likeness_source' and cur.likeness is null and cur.likeness_error is null;

  verified_from := case when cur.status = 'processing' then 'verifying' else cur.status end;
  -- The first of this call's moves that is not allowed, in the order they are made.
  illegal := case
    when cur.status = 'processing'
         and not exists (select from voicegate.attempt_moves a
                          where a.dimension = 'status' and a.from_state = 'processing'
                            and a.to_state = 'verifying') then 1
    when not exists (select from voicegate.attempt_moves a
                      where a.dimension = 'status' and a.from_state = verified_from and a.to_state = 'ready') then 2
    when cur.is_active
         and not exists (select from voicegate.attempt_moves a
                          where a.dimension = 'runtime' and a.from_state = cur.runtime_status
                            and a.to_state = 'syncing') then 3
  end;
  if illegal is not null then
    raise exception 'illegal % transition % -> % for attempt %',
      case when illegal = 3 then 'runtime' else 'status' end,
      case illegal when 1 then cur.status when 2 then verified_from else cur.runtime_status end,
      case illegal when 1 then 'verifying' when 2 then 'ready' else 'syncing' end,
      p_attempt_id using errcode = 'VG422';
  end if;

  -- What the three moves leave, written by the update itself: `a` is the row as locked above.
  update public.voice_clone_attempts a set
    status = 'ready',
    runtime_status = case when a.is_active then 'synced' else a.runtime_status end,
    lease_owner = null,
    lease_expires_at = null,
    provider_voice_id = case when p_changes ? 'provider_voice_id' then p_changes ->> 'provider_voice_id'
                             else a.provider_voice_id end,
    provider_target_model = case when p_changes ? 'provider_target_model' then p_changes ->> 'provider_target_model'
                                 else a.provider_target_model end,
    provider_request_id = case when p_changes ? 'provider_request_id' then p_changes ->> 'provider_request_id'
                               else a.provider_request_id end,
    provider_metadata = case when p_changes ? 'provider_metadata'
                             then a.provider_metadata || (p_changes -> 'provider_metadata')
                             else a.provider_metadata end,
    -- The probe's judgement of the voice this call completes with.
    likeness = case when judged then (p_changes ->> 'likeness')::double precision else a.likeness end,
    likeness_threshold = case when judged then (p_changes ->> 'likeness_threshold')::double precision
                              else a.likeness_threshold end,
    likeness_source = case when judged then p_changes ->> 'likeness_source' else a.likeness_source end,
    likeness_error = case when judged then p_changes ->> 'likeness_error' else a.likeness_error end,
    likeness_baseline = case when judged then (p_changes ->> 'likeness_baseline')::double precision
                             else a.likeness_baseline end,
    last_error_code = null,
    last_error_message = null,
    version = a.version + case when a.status = 'processing' then 1 else 0 end + 1
                        + case when a.is_active then 1 else 0 end,
    updated_at = now(),
    finished_at = now()
  where a.id = p_attempt_id
  returning a.* into nxt;

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
    if judged then
      -- The likeness is in the voice's manifest: its `updated_at` moves, as record_likeness moved it, even when
      -- the publication left the row as it was (a manifest writer that read it before then writes it again).
      update public.voices v set updated_at = now()
       where v.id = nxt.voice_id and v.provider_voice_id = nxt.provider_voice_id and v.updated_at <> now();
    end if;
  end if;

  -- In the order of the moves: a VALUES list is scanned in its order, and this plan has no step that could
  -- reorder it, so the events get their ids in that order (test_complete_attempt reads them back by id).
  insert into public.voice_clone_attempt_events (attempt_id, owner_id, dimension, from_state, to_state, actor, detail)
  select nxt.id, nxt.owner_id, e.dimension, e.from_state, e.to_state, p_actor, e.detail
    from (values
      (cur.status = 'processing', 'status', 'processing', 'verifying',
       jsonb_strip_nulls(jsonb_build_object('error', cur.last_error_code, 'late', not nxt.is_active))),
      (true, 'status', verified_from, 'ready', jsonb_build_object('late', not nxt.is_active)),
      (nxt.is_active, 'runtime', cur.runtime_status, 'syncing', '{}'::jsonb),
      (nxt.is_active, 'runtime', 'syncing', case when in_sync then 'synced' else 'sync_failed' end, '{}'::jsonb)
    ) as e(made, dimension, from_state, to_state, detail)
   where e.made;

  if in_sync and nxt.preview_status = 'pending' then
    -- As backend/queues.py's preview_message spells it.
    insert into pgmq.q_voice_preview (vt, message)
    values (clock_timestamp(),
            jsonb_build_object('type', 'VOICE_PREVIEW', 'attemptId', nxt.id, 'version', nxt.version));
  end if;
  return nxt;
end
$$;
