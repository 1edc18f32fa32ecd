-- name: sample_row
-- As the service: the whole row, its prints (the service's alone) with it.
select id, owner_id, voice_id, consent_id, bucket_id, object_path, declared_type, sniffed_type, size_bytes,
       duration_ms, sample_rate, channels, quality_report, processed_object_path, status, failure_reason, transcript,
       language, expires_at, created_at, updated_at, provider, original_removed_at, processed_provider, name,
       voiceprint, speaker_match, speech_prints
  from public.voice_samples where id = %(sample_id)s;

-- name: lock_owned
-- As the service, after the caller's own check that the sample is visible to them.
select id, owner_id, voice_id, consent_id, bucket_id, object_path, declared_type, sniffed_type, size_bytes,
       duration_ms, sample_rate, channels, quality_report, processed_object_path, status, failure_reason, transcript,
       language, expires_at, created_at, updated_at, provider, original_removed_at, processed_provider, name,
       voiceprint, speaker_match, speech_prints
  from public.voice_samples
 where id = %(id)s and owner_id = %(owner_id)s
   for update;

-- name: count_expired
select count(*) as n from public.voice_samples where expires_at <= now();
