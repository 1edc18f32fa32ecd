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
