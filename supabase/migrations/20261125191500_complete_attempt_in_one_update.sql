-- The clone step's last call in fewer, cheaper statements (issue 29). What it leaves is unchanged: the row,
-- the events in the same order with the same details, the mirror, the voice row, the provider reference, the
-- webhook and VOICE_PREVIEW messages (tests/integration/test_complete_attempt.py holds it to the three
-- voicegate.transition_attempt moves it stands for).
--
-- * The attempt's new values were assigned field by field to a row variable (fifteen assignments into a
--   composite, each a step of the interpreter) and then written by an UPDATE naming each column; the UPDATE
--   now computes them from the row it updates and hands the row back (RETURNING).
-- * Its moves were checked by one query that joined them to voicegate.attempt_moves (a hash anti-join) and
--   sorted them to name the first one not allowed; each is now one lookup of the table's key, in order.
-- * Its events were inserted from a VALUES list sorted by the order of the moves; the list is written in
--   that order and inserted as it is scanned, without the sort.
--
-- Measured (bench/schema_cpu.py --since 20261125191500 --rounds 3, the bare equivalent's statements on both
-- schemas, chunk beside chunk, 2 cores): the completion at 0.903 of what it cost without the project's webhook
-- endpoint and 0.926 with it (539 -> 486 and 610 -> 565 µs of Postgres CPU per attempt), all the attempt's
-- statements at 0.927 and 0.953.

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
  in_sync boolean;
  illegal integer;
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
