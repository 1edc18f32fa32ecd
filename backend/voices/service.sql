-- name: list_voices
-- Run as the caller: RLS shows only their own voices that are not deleted.
select *
  from public.voices
 order by created_at desc, id
 limit %(limit)s;

-- name: get_voice
-- Run as the caller, as `list_voices`.
select *
  from public.voices
 where id = %(id)s;

-- name: soft_delete_voice
update public.voices set deleted_at = now()
 where id = %(id)s and owner_id = %(owner_id)s and deleted_at is null
returning id;

-- name: visible_voice
-- Run as the caller: their own voices that are not deleted.
select id from public.voices where id = %(id)s and deleted_at is null;

-- name: rename_voice
-- Run as the caller: voices_owner_update lets them change their own voices that are not deleted.
update public.voices set name = %(name)s
 where id = %(id)s
returning *;
