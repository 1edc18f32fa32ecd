-- name: create_reflection
insert into public.reflections (name) values (%(name)s)
returning id, name, voice, created_at, updated_at;

-- name: list_reflections
select id, name, voice, created_at, updated_at
  from public.reflections
 order by created_at desc, id
 limit %(limit)s;

-- name: get_reflection
select id, name, voice, created_at, updated_at from public.reflections where id = %(id)s;

-- name: readiness
select ready, reasons from public.voice_launch_readiness(%(id)s);

-- name: list_attempts
select * from public.voice_clone_attempts
 where reflection_id = %(reflection_id)s
 order by created_at desc, id
 limit %(limit)s;

-- name: get_attempt
select * from public.voice_clone_attempts where id = %(attempt_id)s and reflection_id = %(reflection_id)s;

-- name: active_attempt
select * from public.voice_clone_attempts where reflection_id = %(reflection_id)s and is_active;

-- name: transition_attempt
select * from voicegate.transition_attempt(
  %(attempt_id)s, %(version)s, %(actor)s, %(status)s, %(runtime_status)s, %(preview_status)s,
  %(lease_owner)s, %(changes)s);

-- name: create_session
insert into public.reflection_sessions (reflection_id, attempt_id)
values (%(reflection_id)s, %(attempt_id)s)
returning id, reflection_id, attempt_id, created_at;

-- name: retry_attempt
insert into public.voice_clone_attempts
  (owner_id, voice_id, reflection_id, sample_id, provider, source, preview_required, max_retries)
select owner_id, voice_id, reflection_id, sample_id, provider, source, preview_required, max_retries
  from public.voice_clone_attempts
 where id = %(attempt_id)s
returning *;
