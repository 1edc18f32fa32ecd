-- name: lock_voice
-- The voice (locked until the manifest is stored), its consent, and the sample it was cloned from,
-- named as the manifest names them. `no key update`: the lock orders this writer against another and
-- against the voice's deletion, but not against a row that merely refers to the voice (a synthesis job's
-- foreign-key check takes `key share`), which must not wait for a Storage upload.
select v.id as voice_id, v.owner_id, v.tts_provider as provider, v.provider_voice_id,
       v.provider_target_model as target_model,
       v.created_at, v.updated_at, v.deleted_at, v.consent_id, c.consent_text_version as consent_version,
       s.id as sample_id, s.quality_report ->> 'verdict' as sample_verdict
  from public.voices v
  left join public.voice_consents c on c.id = v.consent_id
  left join public.voice_samples s on s.id = %(sample_id)s
 where v.id = %(voice_id)s
   for no key update of v;
