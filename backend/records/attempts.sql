-- name: load_attempt
-- The attempt and the database's clock. The queries here name their columns, all but the samples' voiceprint
-- (biometric data, the service's alone): a caller may run them, and `*` would name that one too and be refused.
select id, voice_id, reflection_id, sample_id, owner_id, provider, source, status, runtime_status, preview_required,
       preview_status, retry_count, max_retries, next_retry_at, lease_owner, lease_expires_at, enrolment_key,
       provider_voice_id, provider_target_model, provider_request_id, provider_metadata, last_error_code,
       last_error_message, is_active, version, created_at, updated_at, finished_at, likeness, likeness_threshold,
       likeness_source, likeness_error, likeness_baseline,
       now() as observed_at
  from public.voice_clone_attempts where id = %(attempt_id)s;

-- name: lock_attempt
select id, voice_id, reflection_id, sample_id, owner_id, provider, source, status, runtime_status, preview_required,
       preview_status, retry_count, max_retries, next_retry_at, lease_owner, lease_expires_at, enrolment_key,
       provider_voice_id, provider_target_model, provider_request_id, provider_metadata, last_error_code,
       last_error_message, is_active, version, created_at, updated_at, finished_at, likeness, likeness_threshold,
       likeness_source, likeness_error, likeness_baseline
  from public.voice_clone_attempts where id = %(attempt_id)s for update;

-- name: transition
select * from voicegate.transition_attempt(
  %(attempt_id)s, %(version)s, %(actor)s, %(status)s, %(runtime_status)s, %(preview_status)s,
  %(lease_owner)s, %(changes)s);

-- name: complete_all
-- `voicegate.complete_attempt` for each of a JSON array's items ({n, attempt_id, actor, lease_owner, changes};
-- `Database.grouped`), in their order: the attempt as completed, by `n`. One refused fails them all.
select i.n, c.*
  from jsonb_to_recordset(%(items)s::jsonb) as i(n int, attempt_id uuid, actor text, lease_owner text, changes jsonb)
 cross join lateral voicegate.complete_attempt(i.attempt_id, i.actor, i.lease_owner, i.changes) c
 order by i.n;

-- name: read_and_lease
select msg_id, read_ct, enqueued_at, vt, message, leased
  from voicegate.read_and_lease_attempts(%(queue)s, %(vt)s, %(qty)s, %(lease_owner)s, %(lease_seconds)s);

-- name: extend_lease
select voicegate.extend_attempt_lease(%(attempt_id)s, %(lease_owner)s, %(seconds)s) as expires_at;

-- name: insert_attempt
insert into public.voice_clone_attempts
  (owner_id, voice_id, reflection_id, sample_id, provider, source, preview_required, preview_status,
   provider_voice_id, provider_target_model)
values (%(owner_id)s, %(voice_id)s, %(reflection_id)s, %(sample_id)s, %(provider)s, %(source)s, %(preview)s,
        case when %(preview)s then 'pending' else 'not_required' end, %(provider_voice_id)s, %(target_model)s)
returning id, voice_id, reflection_id, sample_id, owner_id, provider, source, status, runtime_status, preview_required,
          preview_status, retry_count, max_retries, next_retry_at, lease_owner, lease_expires_at, enrolment_key,
          provider_voice_id, provider_target_model, provider_request_id, provider_metadata, last_error_code,
          last_error_message, is_active, version, created_at, updated_at, finished_at, likeness, likeness_threshold,
          likeness_source, likeness_error, likeness_baseline;

-- name: retry_attempt
insert into public.voice_clone_attempts
  (owner_id, voice_id, reflection_id, sample_id, provider, source, preview_required, max_retries)
select owner_id, voice_id, reflection_id, sample_id, provider, source, preview_required, max_retries
  from public.voice_clone_attempts
 where id = %(attempt_id)s
returning id, voice_id, reflection_id, sample_id, owner_id, provider, source, status, runtime_status, preview_required,
          preview_status, retry_count, max_retries, next_retry_at, lease_owner, lease_expires_at, enrolment_key,
          provider_voice_id, provider_target_model, provider_request_id, provider_metadata, last_error_code,
          last_error_message, is_active, version, created_at, updated_at, finished_at, likeness, likeness_threshold,
          likeness_source, likeness_error, likeness_baseline;

-- name: insert_sample_set
-- The attempt's samples, in the order given (a trigger checks each is the attempt owner's).
insert into public.voice_clone_attempt_samples (attempt_id, sample_id, owner_id, position)
select %(attempt_id)s, s.sample_id, %(owner_id)s, s.ord - 1
  from unnest(%(sample_ids)s::uuid[]) with ordinality as s (sample_id, ord);

-- name: copy_sample_set
insert into public.voice_clone_attempt_samples (attempt_id, sample_id, owner_id, position)
select %(attempt_id)s, sample_id, owner_id, position
  from public.voice_clone_attempt_samples
 where attempt_id = %(from_attempt_id)s;

-- name: sample_set
select sample_id, position, speech_s, loudness_lufs, median_pitch_hz, spectrum_db
  from public.voice_clone_attempt_samples
 where attempt_id = %(attempt_id)s
 order by position;

-- name: record_measures
update public.voice_clone_attempt_samples
   set speech_s = %(speech_s)s, loudness_lufs = %(loudness_lufs)s, median_pitch_hz = %(median_pitch_hz)s,
       spectrum_db = %(spectrum_db)s
 where attempt_id = %(attempt_id)s and sample_id = %(sample_id)s;

-- name: open_for_voice
-- The voice's clone still under way, if any: a job made now waits for it.
select id, voice_id, reflection_id, sample_id, owner_id, provider, source, status, runtime_status, preview_required,
       preview_status, retry_count, max_retries, next_retry_at, lease_owner, lease_expires_at, enrolment_key,
       provider_voice_id, provider_target_model, provider_request_id, provider_metadata, last_error_code,
       last_error_message, is_active, version, created_at, updated_at, finished_at, likeness, likeness_threshold,
       likeness_source, likeness_error, likeness_baseline
  from public.voice_clone_attempts
 where voice_id = %(voice_id)s and status = any(%(open)s::text[])
   and id is distinct from %(besides)s::uuid
 order by created_at desc
 limit 1;

-- name: enrolled_by_owner
select 1 as found from public.voice_clone_attempts
 where owner_id = %(owner_id)s and enrolment_key = %(enrolment_key)s;

-- name: list_for_reflection
select id, voice_id, reflection_id, sample_id, owner_id, provider, source, status, runtime_status, preview_required,
       preview_status, retry_count, max_retries, next_retry_at, lease_owner, lease_expires_at, enrolment_key,
       provider_voice_id, provider_target_model, provider_request_id, provider_metadata, last_error_code,
       last_error_message, is_active, version, created_at, updated_at, finished_at, likeness, likeness_threshold,
       likeness_source, likeness_error, likeness_baseline
  from public.voice_clone_attempts
 where reflection_id = %(reflection_id)s
 order by created_at desc, id
 limit %(limit)s;

-- name: get_for_reflection
select id, voice_id, reflection_id, sample_id, owner_id, provider, source, status, runtime_status, preview_required,
       preview_status, retry_count, max_retries, next_retry_at, lease_owner, lease_expires_at, enrolment_key,
       provider_voice_id, provider_target_model, provider_request_id, provider_metadata, last_error_code,
       last_error_message, is_active, version, created_at, updated_at, finished_at, likeness, likeness_threshold,
       likeness_source, likeness_error, likeness_baseline
  from public.voice_clone_attempts where id = %(attempt_id)s and reflection_id = %(reflection_id)s;

-- name: active_for_reflection
select id, voice_id, reflection_id, sample_id, owner_id, provider, source, status, runtime_status, preview_required,
       preview_status, retry_count, max_retries, next_retry_at, lease_owner, lease_expires_at, enrolment_key,
       provider_voice_id, provider_target_model, provider_request_id, provider_metadata, last_error_code,
       last_error_message, is_active, version, created_at, updated_at, finished_at, likeness, likeness_threshold,
       likeness_source, likeness_error, likeness_baseline
  from public.voice_clone_attempts where reflection_id = %(reflection_id)s and is_active;

-- name: get_attempt
-- Run as the caller: RLS shows only their own attempts, with or without a reflection.
select id, voice_id, reflection_id, sample_id, owner_id, provider, source, status, runtime_status, preview_required,
       preview_status, retry_count, max_retries, next_retry_at, lease_owner, lease_expires_at, enrolment_key,
       provider_voice_id, provider_target_model, provider_request_id, provider_metadata, last_error_code,
       last_error_message, is_active, version, created_at, updated_at, finished_at, likeness, likeness_threshold,
       likeness_source, likeness_error, likeness_baseline
  from public.voice_clone_attempts where id = %(attempt_id)s;

-- name: count_by_status
select status, count(*)::bigint as n from public.voice_clone_attempts group by status;

-- name: lease_counts
-- Stale leases: processing/verifying attempts whose worker stopped renewing its lease.
select count(*) filter (where lease_expires_at < now()) as stale_leases,
       count(*) filter (where lease_expires_at >= now()) as live_leases
  from public.voice_clone_attempts
 where status in ('processing', 'verifying');
