-- name: voices
-- Run as the caller: RLS shows only their own voices that are not deleted (and their own attempts). The voice `id`,
-- or with a null `id` all of them, newest first; at most `limit`. Each with the likeness of the ready attempt that
-- made (or attached) its current provider voice.
select v.*, l.*
  from public.voices v
  left join lateral (
    select a.likeness, a.likeness_threshold, a.likeness_source, a.likeness_error, a.likeness_baseline
      from public.voice_clone_attempts a
     where a.voice_id = v.id and a.provider = v.tts_provider and a.provider_voice_id = v.provider_voice_id
       and a.status = 'ready'
     order by a.finished_at desc nulls last, a.created_at desc
     limit 1
  ) l on true
 where %(id)s::uuid is null or v.id = %(id)s
 order by v.created_at desc, v.id
 limit %(limit)s;

-- name: soft_delete_voice
-- Its status as it was deleted: a draft's upload, which nothing else will ever read, goes with it.
update public.voices set deleted_at = now()
 where id = %(id)s and owner_id = %(owner_id)s and deleted_at is null
returning id, status;

-- name: rename_voice
-- Run as the caller: voices_owner_update lets them change their own voices that are not deleted.
update public.voices set name = %(name)s
 where id = %(id)s
returning id;

-- name: voice_set
-- As the caller: RLS shows their own attempts, sets and samples. The voice's newest attempt made from a
-- set; a sample's speech and loudness come from its quality report until the enrolment measured them.
select a.id as attempt_id, a.status as attempt_status, m.sample_id, m.position,
       coalesce(m.speech_s, (s.quality_report ->> 'speechDurationS')::real) as speech_s,
       coalesce(m.loudness_lufs, (s.quality_report ->> 'loudnessLufs')::real) as loudness_lufs,
       m.median_pitch_hz, m.spectrum_db
  from (select t.id, t.status, t.created_at
          from public.voice_clone_attempts t
         where t.voice_id = %(voice_id)s
           and exists (select from public.voice_clone_attempt_samples x where x.attempt_id = t.id)
         order by t.created_at desc, t.id desc
         limit 1) a
  join public.voice_clone_attempt_samples m on m.attempt_id = a.id
  join public.voice_samples s on s.id = m.sample_id
 order by m.position;

-- name: draft_count
-- The owner's live draft voices: made by `POST /api/clone/upload-url`, never finalized.
select count(*) as n from public.voices where owner_id = %(owner_id)s and status = 'draft' and deleted_at is null;
