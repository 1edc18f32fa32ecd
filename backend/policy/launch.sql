-- name: reflection_visible
select id, name from public.reflections where id = %(id)s;

-- name: voice_state
-- The reflection's mirror and its launch readiness in one round trip.
select r.id, r.voice, v.ready, v.reasons
  from public.reflections r
 cross join lateral public.voice_launch_readiness(r.id) v
 where r.id = %(id)s;

-- name: runtime_voice
-- Run as the caller: the reflection's active attempt and the voice row a runtime speaks with (a synced
-- attempt is one whose provider voice that row carries).
select a.id as attempt_id, v.id as voice_id, v.tts_provider as provider, v.provider_voice_id,
       v.provider_target_model as target_model, v.provider_metadata, v.language
  from public.voice_clone_attempts a
  join public.voices v on v.id = a.voice_id
 where a.reflection_id = %(id)s and a.is_active;
