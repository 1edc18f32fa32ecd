-- name: local_user
-- The demo page's local user in embedded auth.users, created on first use (as `voicegate token` does).
insert into auth.users (id, email) values (gen_random_uuid(), %(email)s)
    on conflict (email) do update set updated_at = now()
returning id, email;
