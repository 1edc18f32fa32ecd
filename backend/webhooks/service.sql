-- name: count_own
-- Run as the caller: RLS counts only their own endpoints.
select count(*) as n from public.webhook_endpoints;

-- name: insert_endpoint
insert into public.webhook_endpoints (owner_id, url, events)
values (%(owner_id)s, %(url)s, %(events)s::text[])
returning id, url, events, created_at, disabled_at;

-- name: insert_secret
insert into voicegate.webhook_secrets (endpoint_id, secret) values (%(endpoint_id)s, %(secret)s);

-- name: list_own
-- Run as the caller: RLS shows only their own endpoints.
select id, url, events, created_at, disabled_at
  from public.webhook_endpoints
 order by created_at desc, id
 limit %(limit)s;

-- name: get_own
-- Run as the caller: RLS shows only their own endpoints.
select id, url, events, created_at, disabled_at from public.webhook_endpoints where id = %(id)s;

-- name: delete_endpoint
-- Its secret goes with it (on delete cascade).
delete from public.webhook_endpoints where id = %(id)s and owner_id = %(owner_id)s returning id;
