-- The clone queue's leasing read hands the likeness probe what it reads (issue 48: fewer round trips per
-- attempt). The probe read the attempt's samples' print and the language its voice was enrolled in (its first
-- sample's, else the voice's) in a transaction of its own, after the read that leased the attempt had just read
-- and updated the same row. The leased attempt now carries them (`likeness_probe`: `language`, and
-- `samples_print` in hex), and the row's bytea `sample_voiceprint` is left out of the row itself (no reader of
-- the leased row takes it; its text form would depend on the session's bytea_output). The worker uses them
-- only when its run has not enrolled the voice itself (an enrolment records a new print: it reads as before).
-- Nothing else changes.

set lock_timeout = '4s';

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
        -- What backend/clone/likeness.sql's sample_print reads, for the probe (see above).
        leased := (to_jsonb(nxt) - 'sample_voiceprint') || jsonb_build_object('likeness_probe', jsonb_build_object(
          'language', (select coalesce(s.language, v.language)
                         from (select) one
                         left join public.voice_samples s on s.id = nxt.sample_id
                         left join public.voices v on v.id = nxt.voice_id),
          'samples_print', encode(nxt.sample_voiceprint, 'hex')));
      end if;
    end if;
    return next;
  end loop;
end
$$;
