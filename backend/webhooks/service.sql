-- name: insert_endpoint
-- No row once the owner has `max_endpoints`: counted under their lock on endpoint creates (user_creates.take), so
-- this statement's snapshot, taken after it, holds every endpoint another create of theirs committed.
insert into public.webhook_endpoints (owner_id, url, events)
select %(owner_id)s, %(url)s, %(events)s::text[]
 where (select count(*) from public.webhook_endpoints where owner_id = %(owner_id)s) < %(max_endpoints)s
returning id, url, events, created_at, disabled_at, disabled_reason, failing_since;

-- name: insert_secret
insert into voicegate.webhook_secrets (endpoint_id, secret) values (%(endpoint_id)s, %(secret)s);

-- name: list_own
-- Run as the caller: RLS shows only their own endpoints.
select id, url, events, created_at, disabled_at, disabled_reason, failing_since
  from public.webhook_endpoints
 order by created_at desc, id
 limit %(limit)s;

-- name: get_own
-- Run as the caller: RLS shows only their own endpoints.
select id, url, events, created_at, disabled_at, disabled_reason, failing_since
  from public.webhook_endpoints where id = %(id)s;

-- name: delete_endpoint
-- Its secret goes with it (on delete cascade).
delete from public.webhook_endpoints where id = %(id)s and owner_id = %(owner_id)s returning id;
