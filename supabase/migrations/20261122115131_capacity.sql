-- Capacity (issue 15): the clone queue's read leases each due `queued` attempt it delivers, in the read's
-- own transaction, so a worker does not open a second one per message just to claim it. Only that one
-- move is made here; every other state the attempt may be found in is the worker's to judge
-- (backend/attempts/worker.py), and the move goes through voicegate.transition_attempt like any other.

set lock_timeout = '4s';

create function voicegate.read_and_lease_attempts(
  p_queue text, p_vt integer, p_qty integer, p_lease_owner text, p_lease_seconds integer
) returns table (msg_id bigint, read_ct integer, enqueued_at timestamptz, vt timestamptz, message jsonb, leased jsonb)
language plpgsql
set search_path = ''
as $$
declare
  delivered record;
  candidate public.voice_clone_attempts;
begin
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
      -- Locked first so the version handed to the transition is current: a duplicate message read by
      -- another worker waits here, then finds the attempt no longer queued.
      select a.* into candidate from public.voice_clone_attempts a
       where a.id = (delivered.message ->> 'attemptId')::uuid
         for update;
      if found and candidate.status = 'queued'
         and (candidate.next_retry_at is null or candidate.next_retry_at <= now()) then
        leased := to_jsonb(voicegate.transition_attempt(
          candidate.id, candidate.version, 'worker:' || p_lease_owner, 'processing', null, null, null,
          jsonb_build_object('lease_owner', p_lease_owner, 'lease_seconds', p_lease_seconds)));
      end if;
    end if;
    return next;
  end loop;
end
$$;

revoke all on function voicegate.read_and_lease_attempts(text, integer, integer, text, integer) from public;
grant execute on function voicegate.read_and_lease_attempts(text, integer, integer, text, integer) to service_role;

-- pgmq's notify-on-insert throttle updates one row of pgmq.notify_insert_throttle per queue in every
-- transaction that sends to the queue, and that row stays locked until the transaction ends: every
-- transaction sending to one queue at once (each attempt move sends a webhook event) waited for the one
-- before it to commit, round trips to its client included. A statement trigger that only NOTIFYs wakes
-- the consumers on the same channel without that lock: PostgreSQL sends a transaction's identical
-- notifications once, as it commits, and a consumer drains with a batch read after each wake-up. It also
-- wakes them on a pgmq too old to notify at all (the Supabase image's version varies).
create function voicegate.notify_queue_insert() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('pgmq.' || tg_table_name || '.INSERT', null);
  return null;
end
$$;

revoke all on function voicegate.notify_queue_insert() from public;

do $$
declare
  queue text;
begin
  foreach queue in array array[
    'voice_clone_process', 'voice_preview', 'voice_synthesis', 'voice_sample_process', 'webhook_delivery']
  loop
    if to_regprocedure('pgmq.disable_notify_insert(text)') is not null then
      perform pgmq.disable_notify_insert(queue);
    end if;
    execute format(
      'create trigger voicegate_notify_insert after insert on pgmq.%I'
      ' for each statement execute function voicegate.notify_queue_insert()',
      'q_' || queue);
  end loop;
end
$$;
