set lock_timeout = '4s';

-- An idle consumer waits for its queue's notifications, which every committed insert sends, and polls only
-- as a safety net. What no notification announces is a message becoming visible later: a send with a delay
-- (a retry's backoff), or a delivery whose visibility timeout runs out (its handler's process died). The
-- consumer asks this before it rests, and wakes when the first such message is due. Messages it holds itself
-- (`p_held`) are left out: it extends their visibility while it handles them.
create or replace function voicegate.queue_next_due(p_queue text, p_held bigint[])
returns double precision
language plpgsql
stable
set search_path = ''
as $$
declare
  due timestamptz;
begin
  execute format('select min(vt) from pgmq.%I where msg_id <> all($1)', 'q_' || p_queue) into due using p_held;
  return extract(epoch from due - clock_timestamp());
end
$$;

revoke all on function voicegate.queue_next_due(text, bigint[]) from public;
grant execute on function voicegate.queue_next_due(text, bigint[]) to service_role;
