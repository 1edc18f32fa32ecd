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

-- name: create_session
insert into public.reflection_sessions (reflection_id, attempt_id)
values (%(reflection_id)s, %(attempt_id)s)
returning id, reflection_id, attempt_id, created_at;

-- name: get_session
select id, reflection_id, attempt_id, created_at from public.reflection_sessions where id = %(id)s;
