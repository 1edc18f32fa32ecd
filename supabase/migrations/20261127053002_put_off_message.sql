set lock_timeout = '4s';

-- A handler may put its message off: the work cannot start here now through no fault of its own (the webhook
-- consumer's slots for a user whose receivers hang are all in use). The message becomes visible again after
-- `p_seconds`, and the read that delivered it is taken back (read_ct one less), so that putting it off counts
-- toward no dead letter in any process. Only if it is still the delivery the consumer read (same read_ct).
-- Returns whether it was put off.
create function voicegate.put_off_message(p_queue text, p_msg_id bigint, p_read_ct integer, p_seconds integer)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
  moved integer;
begin
  execute format(
    'update pgmq.%I set vt = clock_timestamp() + make_interval(secs => $3), read_ct = read_ct - 1
      where msg_id = $1 and read_ct = $2 and read_ct > 0', 'q_' || p_queue)
    using p_msg_id, p_read_ct, p_seconds;
  get diagnostics moved = row_count;
  return moved > 0;
end
$$;

revoke all on function voicegate.put_off_message(text, bigint, integer, integer) from public;
grant execute on function voicegate.put_off_message(text, bigint, integer, integer) to service_role;
