-- name: reserve
-- As the service; the user's counter stays locked until the caller's transaction ends.
select reserved, used, window_start, extract(epoch from window_start + make_interval(secs => %(window_seconds)s)
       - now()) as reset_in
  from voicegate.reserve_usage(%(owner_id)s, %(provider)s, %(model)s, %(kind)s, %(work_id)s, %(call_key)s,
                               %(characters)s, %(limit)s, %(window_seconds)s);

-- name: read
-- As the service: what the user has spent this window, without locking (none yet: no row, or last window's).
-- The owner first: a user who is gone (deleted, or soft-deleted) reads nothing (VG401, a 401), as a user
-- transaction's opening answers.
select voicegate.require_owner(%(owner_id)s), coalesce(sum(u.characters) filter (where u.window_start = w.start), 0)::bigint as used, w.start as window_start,
       extract(epoch from w.start + make_interval(secs => %(window_seconds)s) - now()) as reset_in
  from (select to_timestamp(floor(extract(epoch from now()) / %(window_seconds)s) * %(window_seconds)s) as start) w
  left join voicegate.user_usage u on u.owner_id = %(owner_id)s
 group by w.start;

-- name: lock_jobs
-- As the service; the user's job creates wait for each other until the caller's transaction ends.
select voicegate.lock_user_jobs(%(owner_id)s);

-- name: active_jobs
-- As the service, under the user's jobs lock (`lock_jobs`): their jobs not yet ended.
select count(*) as active
  from public.synthesis_jobs
 where owner_id = %(owner_id)s and status in ('queued', 'processing');

-- name: record_seconds
-- As the service, in the transaction that records what the call returned.
update voicegate.usage_events
   set audio_seconds = %(audio_seconds)s
 where kind = %(kind)s and work_id = %(work_id)s and call_key = %(call_key)s;

-- name: record_unmetered
-- As the service: a call that sends no text (an enrolment) is written, not counted against the quota.
insert into voicegate.usage_events (owner_id, provider, model, kind, work_id, call_key, characters)
values (%(owner_id)s, %(provider)s, %(model)s, %(kind)s, %(work_id)s, %(call_key)s, 0)
on conflict on constraint usage_events_call_key do nothing;

-- name: spent
-- As the service: the user's ledger since `since`, by provider and kind.
select provider, kind, sum(characters)::bigint as characters, coalesce(sum(audio_seconds), 0)::float8 as audio_seconds,
       count(*) as calls
  from voicegate.usage_events
 where owner_id = %(owner_id)s and at >= %(since)s
 group by provider, kind
 order by provider, kind;

-- name: report
-- As the service: every user's ledger in [since, until), by provider, with the e-mail Auth keeps for them (if any).
select e.owner_id, voicegate.account_email(e.owner_id) as email, e.provider, sum(e.characters)::bigint as characters,
       coalesce(sum(e.audio_seconds), 0)::float8 as audio_seconds, count(*) as calls
  from voicegate.usage_events e
 where e.at >= %(since)s and e.at < %(until)s
 group by e.owner_id, e.provider
 order by email nulls last, e.owner_id, e.provider;

-- name: reserve_resend
-- As the service; the user's counter stays locked until the caller's transaction ends.
select reserved, used, window_start, extract(epoch from window_start + make_interval(secs => %(window_seconds)s)
       - now()) as reset_in
  from voicegate.reserve_resend(%(owner_id)s, %(kind)s, %(work_id)s, %(call_key)s, %(characters)s, %(limit)s,
                                %(window_seconds)s);

-- name: release
-- As the service; the user's counter stays locked until the caller's transaction ends.
select voicegate.release_usage(%(owner_id)s, %(kind)s, %(work_id)s, %(call_key)s, %(sends)s,
                               %(window_seconds)s) as released;
