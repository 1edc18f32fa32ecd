-- name: delete_sample
-- Deleted inside the caller's transaction before its objects are removed, so a row that cannot go
-- (a constraint) is found before Storage is touched; the deletion commits after the removal.
delete from public.voice_samples
 where id = (select id from public.voice_samples
              where id = %(id)s and (%(expired_before)s::timestamptz is null or expires_at <= %(expired_before)s)
              for update skip locked)
returning id as sample_id, owner_id, bucket_id, object_path, processed_object_path, expires_at;

-- name: brief_lock_wait
-- Under the statement deadline, so a row held longer is a clear 409, not a 503 for a database that is up.
select set_config('lock_timeout', '500ms', true);

-- name: delete_sample_waiting
-- The owner's delete (or withdrawn consent): it waits for a worker that holds the row for a moment
-- (its status, its voice), where the retention purge passes it by; gone after the wait means deleted.
delete from public.voice_samples
 where id = (select id from public.voice_samples where id = %(id)s for update)
returning id as sample_id, owner_id, bucket_id, object_path, processed_object_path, expires_at;

-- name: expired_samples
-- Samples whose retention ended, oldest expiry first, after the (expires_at, id) cursor; `keep` when
-- its owner consented to keep it for re-enrolment and its voice lives (it is trimmed, not purged). A
-- kept sample already trimmed is left until its voice is deleted or the consent withdrawn.
select s.id as sample_id, s.owner_id, s.bucket_id, s.object_path, s.processed_object_path, s.expires_at,
       (c.keep_sample and c.keep_sample_withdrawn_at is null and v.id is not null and v.deleted_at is null
        and s.status = 'ready' and s.processed_object_path is not null) as keep
  from public.voice_samples s
  join public.voice_consents c on c.id = s.consent_id
  left join public.voices v on v.id = s.voice_id
 where s.expires_at <= %(now)s
   and (s.expires_at, s.id) > (coalesce(%(after_expires_at)s::timestamptz, '-infinity'),
                               coalesce(%(after_id)s::uuid, '00000000-0000-0000-0000-000000000000'))
   and not (s.original_removed_at is not null and c.keep_sample and c.keep_sample_withdrawn_at is null
            and v.id is not null and v.deleted_at is null)
 order by s.expires_at, s.id
 limit %(limit)s;

-- name: trim_sample
-- A kept sample past its retention, still kept, with its original: the original is marked removed
-- (committed after the object is gone), the row and the cleaned copy stay.
update public.voice_samples s
   set original_removed_at = now()
  from public.voice_consents c, public.voices v
 where s.id = (select id from public.voice_samples
                where id = %(id)s and expires_at <= %(expired_before)s and original_removed_at is null
                  and status = 'ready' and processed_object_path is not null
                  for update skip locked)
   and c.id = s.consent_id and c.keep_sample and c.keep_sample_withdrawn_at is null
   and v.id = s.voice_id and v.deleted_at is null
returning s.id as sample_id, s.owner_id, s.consent_id, s.bucket_id, s.object_path, s.processed_object_path,
          s.expires_at;

-- name: kept_samples_of_voice
select s.id from public.voice_samples s
  join public.voice_consents c on c.id = s.consent_id
 where s.voice_id = %(voice_id)s and c.keep_sample;
