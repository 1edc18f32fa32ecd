-- `Idempotency-Key` on the create routes (backend/idempotency.py). One row per (user, route, key):
-- claimed `in_flight` in its own committed transaction, so a concurrent duplicate sees it and gets
-- 409; marked `completed` with the response in the same transaction as the domain write, so a key
-- is never completed without its effect nor an effect left behind an in-flight key.
-- The service alone reads and writes it: users have no grant and no policy, and the table lives in
-- `voicegate`, which PostgREST does not expose.

set lock_timeout = '4s';

create table voicegate.idempotency_keys (
  owner_id uuid not null references auth.users (id) on delete cascade,
  -- Method, route template and path parameters: the same key on another route is another key.
  route text not null check (length(route) between 1 and 1000),
  -- Printable ASCII, as the header allows (the API checks it first and answers 400).
  key text not null check (key ~ '^[ -~]{1,255}$'),
  -- sha256 (hex) of the request body, or of what the route fingerprints (multipart fields + file hash).
  fingerprint text not null check (fingerprint ~ '^[0-9a-f]{64}$'),
  -- Fences completion and release to the request that holds the claim, should it be reclaimed.
  claim_token uuid not null,
  state text not null default 'in_flight' check (state in ('in_flight', 'completed')),
  response_status smallint check (response_status between 100 and 599),
  -- `json`, not `jsonb`: it keeps the text as first sent, so a replay is byte-for-byte the original.
  response_body json,
  -- When the current claim was taken; an in-flight claim older than the lease counts as abandoned.
  created_at timestamptz not null default now(),
  completed_at timestamptz,
  expires_at timestamptz not null,
  primary key (owner_id, route, key),
  check (expires_at > created_at),
  check ((state = 'in_flight' and response_status is null and response_body is null and completed_at is null)
         or (state = 'completed' and response_status is not null and response_body is not null
             and completed_at is not null))
);
create index idempotency_keys_expires_idx on voicegate.idempotency_keys (expires_at);

revoke all on voicegate.idempotency_keys from public, anon, authenticated;
grant select, insert, update, delete on voicegate.idempotency_keys to service_role;
alter table voicegate.idempotency_keys enable row level security;

-- Expired keys are reclaimed on reuse and each user's are dropped when they claim a new one; this
-- removes everyone's, for a periodic job. Returns how many rows it deleted.
create or replace function voicegate.purge_idempotency_keys() returns integer
language sql
set search_path = ''
as $$
  with gone as (delete from voicegate.idempotency_keys where expires_at <= now() returning 1)
  select count(*)::integer from gone;
$$;
revoke all on function voicegate.purge_idempotency_keys() from public;
grant execute on function voicegate.purge_idempotency_keys() to service_role;
