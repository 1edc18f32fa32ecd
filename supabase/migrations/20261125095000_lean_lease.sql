-- The clone queue's leasing read and the attempt events, written leaner (issue 29): what they leave is
-- unchanged (the leased row, its event with the same detail, the mirror, the voice row, the row handed back).
--
-- * voicegate.read_and_lease_attempts leased each due attempt through voicegate.transition_attempt, the one
--   function for every move: a call that loops over its changes' keys, checks the move with a call of its
--   own, rewrites all eighteen columns it may change, and records the event through a SQL function, which
--   PostgreSQL before 18 plans again on every call. A lease is always the same move (queued → processing,
--   under the reading worker's lease), so it is now made in place: the move checked once per read against
--   voicegate.attempt_moves, the five columns it changes updated, its event inserted, the attempt
--   published as before. It runs as its owner now, as transition_attempt did, to publish.
-- * An attempt event's foreign key checked, for each event inserted, that its attempt exists (a locked
--   read of the attempt: six for an attempt that reaches `ready`, for its insert, its lease and the four
--   moves of its completion). Every event is written by a function that has just inserted or locked that
--   attempt, in the same transaction, so the check protected nothing; what the key did beyond it, taking
--   an attempt's events with it when the attempt is deleted (with its owner), a statement trigger now does.

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
  cur public.voice_clone_attempts;
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
      -- Locked first so that a duplicate message read by another worker waits here, then finds the attempt
      -- no longer queued.
      select a.* into cur from public.voice_clone_attempts a
       where a.id = (delivered.message ->> 'attemptId')::uuid
         for update;
      if found and cur.status = 'queued' and (cur.next_retry_at is null or cur.next_retry_at <= now()) then
        update public.voice_clone_attempts a set
          status = 'processing',
          lease_owner = p_lease_owner,
          lease_expires_at = now() + make_interval(secs => greatest(1, coalesce(p_lease_seconds, 60))),
          version = cur.version + 1,
          updated_at = now()
         where a.id = cur.id
        returning a.* into nxt;
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
revoke all on function voicegate.read_and_lease_attempts(text, integer, integer, text, integer) from public;
grant execute on function voicegate.read_and_lease_attempts(text, integer, integer, text, integer) to service_role;

create function voicegate.forget_deleted_attempt_events() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  delete from public.voice_clone_attempt_events e using gone where e.attempt_id = gone.id;
  return null;
end
$$;
revoke all on function voicegate.forget_deleted_attempt_events() from public;

create trigger voice_clone_attempts_forget_events after delete on public.voice_clone_attempts
  referencing old table as gone
  for each statement execute function voicegate.forget_deleted_attempt_events();

-- squawk-ignore ban-drop-constraint -- meant: its cascade is the trigger above; its check protected nothing, as said
alter table public.voice_clone_attempt_events drop constraint voice_clone_attempt_events_attempt_id_fkey;
