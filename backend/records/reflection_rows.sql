-- name: reflection_visible
select id, name from public.reflections where id = %(id)s;

-- name: readiness
-- The reflection's mirror and its launch readiness in one round trip.
select r.id, r.voice, v.ready, v.reasons
  from public.reflections r
 cross join lateral public.voice_launch_readiness(r.id) v
 where r.id = %(id)s;

-- name: launch
-- Run as the caller: the reflection's launch readiness, its active attempt and the voice row a runtime speaks with
-- (a synced attempt is one whose provider voice that row carries), in one snapshot.
select v.ready, v.reasons, a.id as attempt_id, vo.id as voice_id, vo.tts_provider as provider, vo.provider_voice_id,
       vo.provider_target_model as target_model, vo.provider_metadata, vo.language
  from public.reflections r
 cross join lateral public.voice_launch_readiness(r.id) v
  left join public.voice_clone_attempts a on a.reflection_id = r.id and a.is_active
  left join public.voices vo on vo.id = a.voice_id
 where r.id = %(id)s;
