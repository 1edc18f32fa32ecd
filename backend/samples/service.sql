-- name: sample_status
-- Run as the caller: RLS shows only their own samples.
select s.id as sample_id, s.status, s.provider, s.sniffed_type, s.size_bytes, s.duration_ms, s.sample_rate,
       s.channels, s.quality_report as quality, s.failure_reason, s.voice_id, s.expires_at, s.created_at,
       coalesce(c.keep_sample and c.keep_sample_withdrawn_at is null, false) as keep_sample, s.name,
       s.consent_id, s.speaker_match
  from public.voice_samples s
  left join public.voice_consents c on c.id = s.consent_id
 where s.id = %(id)s;

-- name: list_samples
-- Run as the caller: RLS shows only their own samples.
select s.id as sample_id, s.status, s.provider, s.sniffed_type, s.size_bytes, s.duration_ms, s.sample_rate,
       s.channels, s.quality_report as quality, s.failure_reason, s.voice_id, s.expires_at, s.created_at,
       coalesce(c.keep_sample and c.keep_sample_withdrawn_at is null, false) as keep_sample, s.name,
       s.consent_id, s.speaker_match
  from public.voice_samples s
  left join public.voice_consents c on c.id = s.consent_id
 order by s.created_at desc, s.id
 limit %(limit)s;

-- name: rename_sample
-- As the service, after the caller's own check that the sample is theirs; the owner is in the statement too.
update public.voice_samples set name = %(name)s
 where id = %(id)s and owner_id = %(owner_id)s
returning id;

-- name: sample_audio
-- Run as the caller: RLS shows only their own samples.
select bucket_id, object_path, original_removed_at, processed_object_path
  from public.voice_samples
 where id = %(id)s;

-- name: withdraw_keep
-- The sample's consent no longer lets it be kept (the purge follows in the same transaction).
update public.voice_consents c
   set keep_sample_withdrawn_at = coalesce(c.keep_sample_withdrawn_at, now())
  from public.voice_samples s
 where s.id = %(sample_id)s and c.id = s.consent_id and c.keep_sample
returning c.id as consent_id;
