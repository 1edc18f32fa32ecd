-- name: send
select pgmq.send(%(queue)s, %(message)s::jsonb, %(delay)s::integer) as msg_id;

-- name: read
select msg_id, read_ct, enqueued_at, vt, message from pgmq.read(%(queue)s, %(vt)s, %(qty)s);

-- name: next_due
select voicegate.queue_next_due(%(queue)s, %(held)s::bigint[]) as seconds;

-- name: set_vt
select msg_id from pgmq.set_vt(%(queue)s, %(msg_id)s, %(vt)s::integer);

-- name: archive
select pgmq.archive(%(queue)s, %(msg_id)s) as archived;

-- name: release
select count(*) from voicegate.release_messages(%(queue)s, %(msg_ids)s::bigint[], %(read_cts)s::integer[]);

-- name: release_listed
select msg_id from voicegate.release_messages(%(queue)s, %(msg_ids)s::bigint[], %(read_cts)s::integer[]) as r (msg_id);

-- name: archive_many
select pgmq.archive(%(queue)s, %(msg_ids)s::bigint[]);

-- name: put_off
-- Told to the queue's consumers as an insert is: one resting until the message's earlier due time wakes to learn
-- the new one.
select voicegate.put_off_message(%(queue)s, %(msg_id)s, %(read_ct)s, %(seconds)s) as put_off,
       pg_notify('pgmq.q_' || %(queue)s || '.INSERT', null) as told;

-- name: tell
-- A message made visible sooner than its consumers were told (a failure's backoff, a hand-back), told to them as an
-- insert is, at the transaction's commit.
select pg_notify('pgmq.q_' || %(queue)s || '.INSERT', null);

-- name: record_error
insert into voicegate.queue_message_errors (queue_name, msg_id, read_ct, error)
values (%(queue)s, %(msg_id)s, %(read_ct)s, left(%(error)s, 1000))
on conflict (queue_name, msg_id) do update set read_ct = excluded.read_ct, error = excluded.error, at = now();

-- name: take_error
delete from voicegate.queue_message_errors where queue_name = %(queue)s and msg_id = %(msg_id)s returning error;

-- name: dead_letter_count
select count(*) as n from pgmq.q_voice_dead_letter;

-- name: metrics
-- pgmq.metrics_all's columns that every pgmq version since 1.0 has.
select queue_name, queue_length, oldest_msg_age_sec, newest_msg_age_sec, total_messages
  from pgmq.metrics_all()
 order by queue_name;

-- name: dead_letters
-- Read straight from the queue table: pgmq.read would count a delivery and hide the message.
select msg_id, read_ct, enqueued_at, message
  from pgmq.q_voice_dead_letter
 where msg_id > coalesce(%(after)s::bigint, 0)
 order by msg_id
 limit %(limit)s;

-- name: lock_dead_letter
select msg_id, message from pgmq.q_voice_dead_letter where msg_id = %(msg_id)s for update skip locked;

-- name: sample_check_backlog
-- Messages waiting or in hand, and those done in the last %(window)s seconds (archived_at is indexed).
select (select count(*) from pgmq.q_voice_sample_process) as waiting,
       (select count(*) from pgmq.a_voice_sample_process
         where archived_at > now() - make_interval(secs => %(window)s)) as done;

-- name: clone_backlog
select (select count(*) from pgmq.q_voice_clone_process) as waiting,
       (select count(*) from pgmq.a_voice_clone_process
         where archived_at > now() - make_interval(secs => %(window)s)) as done;
