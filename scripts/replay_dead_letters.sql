-- name: dead_letters
-- Read straight from the queue table: pgmq.read would count a delivery and hide the message.
select msg_id, read_ct, enqueued_at, message
  from pgmq.q_voice_dead_letter
 where msg_id > coalesce(%(after)s::bigint, 0)
 order by msg_id
 limit %(limit)s;

-- name: lock_dead_letter
select msg_id, message from pgmq.q_voice_dead_letter where msg_id = %(msg_id)s for update skip locked;

-- name: archive
select pgmq.archive(%(queue)s, %(msg_id)s::bigint) as archived;
