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
-- pgmq's read, but in turn by the deliveries' owners (`backend.queues.Turns`), each owner's in the order they became
-- due (their `vt`), not the order they were first sent: a retry waits behind every delivery of its owner due before
-- it, and one owner's deliveries, however many are due, never stand before another owner's first one. Each owner's
-- due deliveries are ranked after the `held` ones of theirs this consumer has in hand, the lowest ranks first, none
-- past the owner's `share` (or their own of `caps`: a user whose receivers are slow). The time a delivery became due
-- is checked again where it is locked, so that one another consumer read meanwhile is skipped.
with due as (
  select msg_id, vt, coalesce(message -> 'data' ->> 'ownerId', '') as owner
    from pgmq.q_webhook_delivery
   where vt <= clock_timestamp()
),
turns as (
  select msg_id, vt, owner,
         coalesce((%(held)s::jsonb ->> owner)::int, 0) + row_number() over (partition by owner order by vt, msg_id) as turn
    from due
),
chosen as (
  select msg_id, owner, turn, vt
    from turns
   where turn <= coalesce((%(caps)s::jsonb ->> owner)::int, %(share)s)
   order by turn, vt, msg_id
   limit %(qty)s
),
locked as (
  select q.msg_id
    from pgmq.q_webhook_delivery q
   where q.msg_id in (select msg_id from chosen) and q.vt <= clock_timestamp()
     for update skip locked
),
taken as (
  update pgmq.q_webhook_delivery q
     set last_read_at = clock_timestamp(),
         vt = clock_timestamp() + make_interval(secs => %(vt)s),
         read_ct = q.read_ct + 1
    from chosen c
   where q.msg_id = c.msg_id and q.msg_id in (select msg_id from locked)
  returning q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message, nullif(c.owner, '') as owner, c.turn, c.vt as due, c.msg_id as n
)
select msg_id, read_ct, enqueued_at, vt, message, owner from taken order by turn, due, n;
