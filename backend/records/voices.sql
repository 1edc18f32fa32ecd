-- name: voice_row
select * from public.voices where id = %(voice_id)s;

-- name: lock_live
select *
  from public.voices
 where id = %(id)s and owner_id = %(owner_id)s and deleted_at is null
   for update;
