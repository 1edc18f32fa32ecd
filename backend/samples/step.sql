-- name: claim_sample
-- As the service.
update public.voice_samples
   set status = 'processing'
 where id = %(sample_id)s and status in ('pending', 'processing')
returning id, owner_id, voice_id, consent_id, bucket_id, object_path, declared_type, sniffed_type, size_bytes,
          duration_ms, sample_rate, channels, quality_report, processed_object_path, status, failure_reason, transcript,
          language, expires_at, created_at, updated_at, provider, original_removed_at, processed_provider, name,
          voiceprint, speaker_match, speech_prints;

-- name: sample_state
select status from public.voice_samples where id = %(sample_id)s;

-- name: fail_unchecked_sample
update public.voice_samples
   set status = 'failed', failure_reason = %(reason)s
 where id = %(sample_id)s and status in ('pending', 'processing');
