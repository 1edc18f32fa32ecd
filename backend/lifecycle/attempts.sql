-- name: load_attempt
select a.*, now() as observed_at from public.voice_clone_attempts a where a.id = %(attempt_id)s;

-- name: transition
select * from voicegate.transition_attempt(
  %(attempt_id)s, %(version)s, %(actor)s, %(status)s, %(runtime_status)s, %(preview_status)s,
  %(lease_owner)s, %(changes)s);

-- name: extend_lease
select voicegate.extend_attempt_lease(%(attempt_id)s, %(lease_owner)s, %(seconds)s) as expires_at;

-- name: enqueue
select pgmq.send(%(queue)s, %(message)s::jsonb, %(delay)s::integer) as msg_id;

-- name: load_sample
select * from public.voice_samples where id = %(sample_id)s;

-- name: load_voice
select * from public.voices where id = %(voice_id)s;
