-- name: count_candidates
select count(*) as n
  from public.voices v
 where v.deleted_at is null
   and v.tts_provider is not null
   and (%(source)s::text is null or v.tts_provider = %(source)s)
   and (%(ids)s::uuid[] is null or v.id = any(%(ids)s::uuid[]));

-- name: candidates
-- Live voices that have been cloned, in id order after the cursor, with what the plan needs: an attempt
-- still under way, and the stored sample a re-enrolment would use.
select v.id, v.owner_id, v.status, v.tts_provider, v.provider_voice_id, v.provider_target_model,
       (select a.id from public.voice_clone_attempts a
         where a.voice_id = v.id and a.status in ('queued', 'processing', 'verifying')
         order by a.created_at desc limit 1) as open_attempt_id,
       (select s.id from public.voice_samples s
         where (s.voice_id = v.id
                or s.id in (select a.sample_id from public.voice_clone_attempts a
                             where a.voice_id = v.id and a.sample_id is not null))
           and s.status <> 'failed'
           and (s.original_removed_at is null or s.processed_object_path is not null)
         order by s.created_at desc, s.id limit 1) as sample_id
  from public.voices v
 where v.deleted_at is null
   and v.tts_provider is not null
   and (%(source)s::text is null or v.tts_provider = %(source)s)
   and (%(ids)s::uuid[] is null or v.id = any(%(ids)s::uuid[]))
   and v.id > coalesce(%(after)s::uuid, '00000000-0000-0000-0000-000000000000')
 order by v.id
 limit %(limit)s;
