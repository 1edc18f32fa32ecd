-- name: lock_dev_user
-- auth.users has no unique constraint on email (only a partial index for non-SSO users), so
-- find-or-create is serialised per email instead of relying on ON CONFLICT.
select pg_advisory_xact_lock(hashtextextended('voicegate dev user: ' || %(email)s, 0))

-- name: find_dev_user
select id, email from auth.users where email = %(email)s order by created_at, id limit 1

-- name: create_dev_user
-- The columns GoTrue fills on sign-up; the table itself defaults none of them.
insert into auth.users (instance_id, id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
values ('00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated', %(email)s,
        '{"provider": "email", "providers": ["email"]}', '{}', now(), now())
returning id, email

-- name: dev_user_by_id
select id, email from auth.users where id = %(id)s

-- name: auth_stand_in
-- voicegate's own `auth` stand-in (embedded, or a compose stack with no Supabase project) has the stand-ins' role;
-- a Supabase project, whose users GoTrue makes, has none.
select exists (select from pg_roles where rolname = 'voicegate_migrator') as present
