-- name: insert_sample
-- As the service.
insert into public.voice_samples (id, owner_id, voice_id, consent_id, bucket_id, object_path, declared_type,
                                  sniffed_type, size_bytes, transcript, language, provider, status, expires_at, name)
values (%(sample_id)s, %(owner_id)s, %(voice_id)s, %(consent_id)s, %(bucket_id)s, %(path)s, %(declared_type)s,
        %(sniffed_type)s, %(size_bytes)s, %(transcript)s, %(language)s, %(provider)s, %(status)s,
        now() + make_interval(secs => %(retention_days)s::double precision * 86400), %(name)s)
returning id, owner_id, voice_id, consent_id, bucket_id, object_path, declared_type, sniffed_type, size_bytes,
          duration_ms, sample_rate, channels, quality_report, processed_object_path, status, failure_reason, transcript,
          language, expires_at, created_at, updated_at, provider, original_removed_at, processed_provider, name,
          voiceprint, speaker_match, speech_prints;

-- name: visible_sample
-- Run as the caller: RLS shows only their own samples.
select id from public.voice_samples where id = %(id)s;

-- name: link_sample_voice
update public.voice_samples set voice_id = %(voice_id)s where id = %(sample_id)s;
