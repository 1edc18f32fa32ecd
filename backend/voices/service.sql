-- name: list_voices
-- Run as the caller: RLS shows only their own voices that are not deleted (and their own attempts).
select v.*, l.*
  from public.voices v
  left join lateral (
    -- The likeness of the ready attempt that made (or attached) the voice's current provider voice.
    select a.likeness, a.likeness_threshold, a.likeness_source, a.likeness_error
      from public.voice_clone_attempts a
     where a.voice_id = v.id and a.provider = v.tts_provider and a.provider_voice_id = v.provider_voice_id
       and a.status = 'ready'
     order by a.finished_at desc nulls last, a.created_at desc
     limit 1
  ) l on true
 order by v.created_at desc, v.id
 limit %(limit)s;

-- name: get_voice
-- Run as the caller, as `list_voices`.
select v.*, l.*
  from public.voices v
  left join lateral (
    -- The likeness of the ready attempt that made (or attached) the voice's current provider voice.
    select a.likeness, a.likeness_threshold, a.likeness_source, a.likeness_error
      from public.voice_clone_attempts a
     where a.voice_id = v.id and a.provider = v.tts_provider and a.provider_voice_id = v.provider_voice_id
       and a.status = 'ready'
     order by a.finished_at desc nulls last, a.created_at desc
     limit 1
  ) l on true
 where v.id = %(id)s;

-- name: soft_delete_voice
update public.voices set deleted_at = now()
 where id = %(id)s and owner_id = %(owner_id)s and deleted_at is null
returning id;

-- name: visible_voice
-- Run as the caller: their own voices that are not deleted.
select id from public.voices where id = %(id)s and deleted_at is null;

-- name: rename_voice
-- Run as the caller: voices_owner_update lets them change their own voices that are not deleted.
with renamed as (
  update public.voices set name = %(name)s
   where id = %(id)s
  returning *
)
select v.*, l.*
  from renamed v
  left join lateral (
    -- The likeness of the ready attempt that made (or attached) the voice's current provider voice.
    select a.likeness, a.likeness_threshold, a.likeness_source, a.likeness_error
      from public.voice_clone_attempts a
     where a.voice_id = v.id and a.provider = v.tts_provider and a.provider_voice_id = v.provider_voice_id
       and a.status = 'ready'
     order by a.finished_at desc nulls last, a.created_at desc
     limit 1
  ) l on true;
