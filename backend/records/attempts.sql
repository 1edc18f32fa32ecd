-- name: load_attempt
select a.*, now() as observed_at from public.voice_clone_attempts a where a.id = %(attempt_id)s;

-- name: lock_attempt
select * from public.voice_clone_attempts where id = %(attempt_id)s for update;

-- name: transition
select * from voicegate.transition_attempt(
  %(attempt_id)s, %(version)s, %(actor)s, %(status)s, %(runtime_status)s, %(preview_status)s,
  %(lease_owner)s, %(changes)s);

-- name: complete
select * from voicegate.complete_attempt(%(attempt_id)s, %(actor)s, %(lease_owner)s, %(changes)s);

-- name: read_and_lease
select msg_id, read_ct, enqueued_at, vt, message, leased
  from voicegate.read_and_lease_attempts(%(queue)s, %(vt)s, %(qty)s, %(lease_owner)s, %(lease_seconds)s);

-- name: extend_lease
select voicegate.extend_attempt_lease(%(attempt_id)s, %(lease_owner)s, %(seconds)s) as expires_at;

-- name: insert_attempt
insert into public.voice_clone_attempts
  (owner_id, voice_id, reflection_id, sample_id, provider, source, preview_required, preview_status,
   provider_voice_id, provider_target_model)
values (%(owner_id)s, %(voice_id)s, %(reflection_id)s, %(sample_id)s, %(provider)s, %(source)s, %(preview)s,
        case when %(preview)s then 'pending' else 'not_required' end, %(provider_voice_id)s, %(target_model)s)
returning *;

-- name: retry_attempt
insert into public.voice_clone_attempts
  (owner_id, voice_id, reflection_id, sample_id, provider, source, preview_required, max_retries)
select owner_id, voice_id, reflection_id, sample_id, provider, source, preview_required, max_retries
  from public.voice_clone_attempts
 where id = %(attempt_id)s
returning *;

-- name: open_for_voice
-- The voice's clone still under way, if any: a job made now waits for it.
select * from public.voice_clone_attempts
 where voice_id = %(voice_id)s and status = any(%(open)s::text[])
   and id is distinct from %(besides)s::uuid
 order by created_at desc
 limit 1;

-- name: enrolled_by_owner
select 1 as found from public.voice_clone_attempts
 where owner_id = %(owner_id)s and enrolment_key = %(enrolment_key)s;

-- name: list_for_reflection
select * from public.voice_clone_attempts
 where reflection_id = %(reflection_id)s
 order by created_at desc, id
 limit %(limit)s;

-- name: get_for_reflection
select * from public.voice_clone_attempts where id = %(attempt_id)s and reflection_id = %(reflection_id)s;

-- name: active_for_reflection
select * from public.voice_clone_attempts where reflection_id = %(reflection_id)s and is_active;
