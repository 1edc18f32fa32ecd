-- name: queue_metrics
-- pgmq.metrics_all's columns that every pgmq version since 1.0 has.
select queue_name, queue_length, oldest_msg_age_sec, newest_msg_age_sec, total_messages
  from pgmq.metrics_all()
 order by queue_name;

-- name: attempts_by_status
select status, count(*)::bigint as n from public.voice_clone_attempts group by status;

-- name: lease_counts
-- Stale leases: processing/verifying attempts whose worker stopped renewing its lease.
select count(*) filter (where lease_expires_at < now()) as stale_leases,
       count(*) filter (where lease_expires_at >= now()) as live_leases
  from public.voice_clone_attempts
 where status in ('processing', 'verifying');

-- name: expired_samples
select count(*) as n from public.voice_samples where expires_at <= now();
