-- The likeness of every voice (issue 46): how much the voice a provider made sounds like its samples, as the
-- cosine between two voiceprints (backend/voiceprint): the mean print of the samples the attempt enrolled,
-- and the print of what the provider spoke in the new voice (a probe sentence as the enrolment ends, or,
-- with VOICEGATE_LIKENESS_PROBE=off, its first preview or render). Kept per attempt, the lifecycle's
-- authority: a re-enrolment is a new attempt and is judged again.
--
-- * sample_voiceprint: the samples' mean print (1024 bytes of float32), recorded with the provider voice the
--   enrolment made, in the same transaction; null for an attempt not enrolled from samples.
-- * likeness: the cosine; likeness_threshold: the published same-speaker threshold it was judged against
--   (thresholds are recalibrated; a score keeps its own); likeness_source: what the provider spoke;
--   likeness_error: why there is no score when it was tried and none came (`probe_failed`, `no_speech`,
--   `no_sample`). Set once per attempt, never by a transition: not a state, so the version is not moved
--   (a worker fenced by it would otherwise find its next move stale).
--
-- The table's privileges and RLS are unchanged: owners read their own attempts, the service writes them.

set lock_timeout = '4s';

alter table public.voice_clone_attempts
  add column sample_voiceprint bytea check (octet_length(sample_voiceprint) = 1024),
  add column likeness double precision check (likeness between -1 and 1),
  add column likeness_threshold double precision check (likeness_threshold between 0 and 1),
  add column likeness_source text check (likeness_source in ('probe', 'preview', 'render')),
  add column likeness_error text check (length(likeness_error) between 1 and 60);

-- The mirror clients read carries the likeness of the reflection's active attempt (null until judged).
create or replace function voicegate.attempt_mirror(a public.voice_clone_attempts) returns jsonb
language sql immutable
set search_path = ''
as $$
  select jsonb_build_object(
    'cloneStatus', a.status,
    'runtimeStatus', a.runtime_status,
    'previewRequired', a.preview_required,
    'previewStatus', a.preview_status,
    'provider', a.provider,
    'voiceId', a.voice_id,
    'providerVoiceId', a.provider_voice_id,
    'targetModel', a.provider_target_model,
    'attemptId', a.id,
    'lastError', case when a.last_error_code is null then null
                      else jsonb_build_object('code', a.last_error_code, 'message', a.last_error_message) end,
    'updatedAt', a.updated_at,
    'version', a.version,
    'likeness', a.likeness,
    'likenessThreshold', a.likeness_threshold,
    'likenessSource', a.likeness_source,
    'likenessError', a.likeness_error)
$$;

-- Mirrors written before carry no likeness keys: rewritten as the function now spells them, so that the
-- drift check (voicegate.mirror_drift) finds nothing that is not drift. Every other key is as it was.
update public.reflections r
   set voice = voicegate.attempt_mirror(a)
  from public.voice_clone_attempts a
 where a.reflection_id = r.id and a.is_active and not (r.voice ? 'likeness');
