set lock_timeout = '4s';

-- An endpoint whose receiver has failed every delivery for days is disabled, as a 410 Gone disables one:
-- `failing_since` is when its current run of failures began (null while its last delivery succeeded), and
-- `disabled_reason` says which of the two disabled it. Both are its owner's to see (GET /v1/webhooks). New
-- nullable columns without a default: no rewrite.
alter table public.webhook_endpoints add column failing_since timestamptz;
-- Every row is null in a new column: nothing to validate.
-- squawk-ignore constraint-missing-not-valid -- a new column, null in every row
alter table public.webhook_endpoints
  add column disabled_reason text check (disabled_reason in ('gone', 'failing'));

-- Until now only a 410 Gone disabled an endpoint.
update public.webhook_endpoints set disabled_reason = 'gone' where disabled_at is not null and disabled_reason is null;
