set lock_timeout = '4s';

-- A consumer whose handler met a database outage could neither finish its message nor extend its
-- visibility, so the message stayed invisible for what was left of its visibility timeout (up to 30 s)
-- after the database answered again. The consumer now hands such messages back with its first read that
-- gets an answer: each is made visible at once, if it is still the delivery the consumer read (same
-- read_ct: nobody has read it since) and still invisible (not yet offered again). Anything else about the
-- message is left as it is. Returns the messages made visible.
create or replace function voicegate.release_messages(p_queue text, p_msg_ids bigint[], p_read_cts integer[])
returns setof bigint
language plpgsql
set search_path = ''
as $$
begin
  return query execute format(
    'update pgmq.%I q set vt = clock_timestamp()
       from unnest($1, $2) as m(msg_id, read_ct)
      where q.msg_id = m.msg_id and q.read_ct = m.read_ct and q.vt > clock_timestamp()
     returning q.msg_id', 'q_' || p_queue)
    using p_msg_ids, p_read_cts;
end
$$;

revoke all on function voicegate.release_messages(text, bigint[], integer[]) from public;
grant execute on function voicegate.release_messages(text, bigint[], integer[]) to service_role;
