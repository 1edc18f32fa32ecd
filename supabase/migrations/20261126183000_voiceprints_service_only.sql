-- Voiceprints are biometric data: the service's alone. A user's token read their own (RLS let owners select every
-- column of their consents, samples and clone attempts). Now users are granted every column of those tables but
-- the voiceprint; RLS still decides which rows. A PostgREST client's `select=*` names every column and is
-- refused; it lists the columns it reads (docs/consent.md).

set lock_timeout = '4s';

revoke select on public.voice_consents from authenticated;
grant select (
  id, owner_id, subject_name, consent_text_version, accepted_at, user_agent, ip_hash, statement_sample_path,
  created_at, keep_sample, keep_sample_withdrawn_at, kind, status, phrase, code, language, expires_at,
  recording_sha256, word_accuracy, speech_seconds, refusal, verified_at, evidence_expires_at, evidence_purged_at
) on public.voice_consents to authenticated;

revoke select on public.voice_samples from authenticated;
grant select (
  id, owner_id, voice_id, consent_id, bucket_id, object_path, declared_type, sniffed_type, size_bytes, duration_ms,
  sample_rate, channels, quality_report, processed_object_path, status, failure_reason, transcript, language,
  expires_at, created_at, updated_at, provider, original_removed_at, processed_provider, name, speaker_match
) on public.voice_samples to authenticated;

revoke select on public.voice_clone_attempts from authenticated;
grant select (
  id, voice_id, reflection_id, sample_id, owner_id, provider, source, status, runtime_status, preview_required,
  preview_status, retry_count, max_retries, next_retry_at, lease_owner, lease_expires_at, enrolment_key,
  provider_voice_id, provider_target_model, provider_request_id, provider_metadata, last_error_code,
  last_error_message, is_active, version, created_at, updated_at, finished_at, likeness, likeness_threshold,
  likeness_source, likeness_error
) on public.voice_clone_attempts to authenticated;

-- A clone attempt keeps its samples' voiceprint only until its likeness is judged: the worker's maintenance sweep
-- erases it then (`forget_judged_prints`), finding the few attempts that still hold one by this index. Run on its
-- own, outside the transaction; not IF NOT EXISTS, which would keep the invalid index a failed build leaves.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, prefer-robust-stmts -- as said just above
create index concurrently voice_clone_attempts_kept_print_idx on public.voice_clone_attempts (id)
  where sample_voiceprint is not null;
