-- name: reflection_visible
select id, name from public.reflections where id = %(id)s;

-- name: create_reflection
-- As the service, after the owner's create was counted (user_creates.take).
insert into public.reflections (owner_id, name) values (%(owner_id)s, %(name)s)
returning id, name, voice, created_at, updated_at;

-- name: list_reflections
select id, name, voice, created_at, updated_at
  from public.reflections
 order by created_at desc, id
 limit %(limit)s;

-- name: get_reflection
select id, name, voice, created_at, updated_at from public.reflections where id = %(id)s;

-- name: voice_state
-- The reflection's mirror and its launch readiness in one round trip.
select r.id, r.voice, v.ready, v.reasons
  from public.reflections r
 cross join lateral public.voice_launch_readiness(r.id) v
 where r.id = %(id)s;

-- name: create_session
insert into public.reflection_sessions (reflection_id, attempt_id)
values (%(reflection_id)s, %(attempt_id)s)
returning id, reflection_id, attempt_id, created_at;

-- name: runtime_voice
-- Run as the caller: the reflection's active attempt and the voice row a runtime speaks with (a synced
-- attempt is one whose provider voice that row carries).
select a.id as attempt_id, v.id as voice_id, v.tts_provider as provider, v.provider_voice_id,
       v.provider_target_model as target_model, v.provider_metadata, v.language
  from public.voice_clone_attempts a
  join public.voices v on v.id = a.voice_id
 where a.reflection_id = %(id)s and a.is_active;

-- name: get_session
select id, reflection_id, attempt_id, created_at from public.reflection_sessions where id = %(id)s;
