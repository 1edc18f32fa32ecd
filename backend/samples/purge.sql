-- name: delete_sample
-- Deleted inside the caller's transaction before its objects are removed, so a row that cannot go
-- (a constraint) is found before Storage is touched; the deletion commits after the removal.
delete from public.voice_samples
 where id = (select id from public.voice_samples
              where id = %(id)s and (%(expired_before)s::timestamptz is null or expires_at <= %(expired_before)s)
              for update skip locked)
returning id as sample_id, owner_id, bucket_id, object_path, processed_object_path, expires_at;

-- name: record_audit
select voicegate.record_audit(%(actor)s, %(action)s, %(subject_type)s, %(subject_id)s, %(detail)s::jsonb) as id;

-- name: expired_samples
-- Samples whose retention ended, oldest expiry first, after the (expires_at, id) cursor.
select id as sample_id, owner_id, bucket_id, object_path, processed_object_path, expires_at
  from public.voice_samples
 where expires_at <= %(now)s
   and (expires_at, id) > (coalesce(%(after_expires_at)s::timestamptz, '-infinity'),
                           coalesce(%(after_id)s::uuid, '00000000-0000-0000-0000-000000000000'))
 order by expires_at, id
 limit %(limit)s;
