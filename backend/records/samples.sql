-- name: sample_row
select * from public.voice_samples where id = %(sample_id)s;

-- name: lock_owned
-- As the service, after the caller's own check that the sample is visible to them.
select *
  from public.voice_samples
 where id = %(id)s and owner_id = %(owner_id)s
   for update;

-- name: count_expired
select count(*) as n from public.voice_samples where expires_at <= now();
