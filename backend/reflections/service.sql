-- name: reflection_visible
select id from public.reflections where id = %(id)s;

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
