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

-- name: insert_checkbox
-- A ticked box, as the user writes it (RLS: their own).
insert into public.voice_consents (subject_name, consent_text_version, user_agent, ip_hash, keep_sample)
values (%(subject_name)s, %(consent_text_version)s, %(user_agent)s, %(ip_hash)s, %(keep_sample)s)
returning id;

-- name: usable_consent
-- The state of the caller's consent a sample is to be stored under (its voiceprint is the service's to read:
-- `consent_voiceprint`).
select public.voice_consent_state(c.kind, c.status, c.expires_at, c.evidence_purged_at) as state
  from public.voice_consents c
 where c.id = %(id)s;

-- name: consent_voiceprint
-- A consent's voiceprint, as the service reads it to judge a sample stored under it (null for a checkbox one,
-- and for a spoken one whose evidence was purged).
select kind, voiceprint from public.voice_consents where id = %(id)s;
