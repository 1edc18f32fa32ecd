-- name: endpoint
select e.url, e.disabled_at, e.failing_since, s.secret
  from public.webhook_endpoints e
  join voicegate.webhook_secrets s on s.endpoint_id = e.id
 where e.id = %(id)s;

-- name: disable_endpoint
update public.webhook_endpoints set disabled_at = now(), disabled_reason = 'gone'
 where id = %(id)s and disabled_at is null;

-- name: delivered
-- Written only when a run of failures ends: a healthy endpoint's deliveries write nothing.
update public.webhook_endpoints set failing_since = null where id = %(id)s and failing_since is not null;

-- name: failed
-- The run of failures begins at the first (written once), and the endpoint is disabled once it has lasted
-- `hours`; the row, when this delivery disabled it.
with began as (
  update public.webhook_endpoints set failing_since = now()
   where id = %(id)s and failing_since is null and disabled_at is null
  returning id
)
update public.webhook_endpoints
   set disabled_at = now(), disabled_reason = 'failing'
 where id = %(id)s and disabled_at is null and failing_since <= now() - make_interval(hours => %(hours)s)
returning owner_id, failing_since;

-- name: declare_project_endpoint
-- Written only when it changes: every worker's sweep says it, and an update would lock the row events read.
update voicegate.project_webhook
   set configured = %(configured)s, endpoint_pending = %(pending)s
 where (configured, endpoint_pending) is distinct from (%(configured)s, %(pending)s);

-- name: read_in_turn
-- pgmq's read, but in the order the deliveries became due (their `vt`), not the order they were first sent:
-- a retry waits behind every delivery due before it, so one user's failing endpoints, whose retries keep
-- the oldest ids, cannot keep another's new events waiting. `vt` is indexed (pgmq's q_webhook_delivery_vt_idx).
with due as (
  select msg_id
    from pgmq.q_webhook_delivery
   where vt <= clock_timestamp()
   order by vt, msg_id
   limit %(qty)s
     for update skip locked
)
update pgmq.q_webhook_delivery q
   set last_read_at = clock_timestamp(),
       vt = clock_timestamp() + make_interval(secs => %(vt)s),
       read_ct = q.read_ct + 1
  from due
 where q.msg_id = due.msg_id
returning q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message;
