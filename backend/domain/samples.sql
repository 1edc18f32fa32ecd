-- name: sample_status
-- Run as the caller: RLS shows only their own samples.
select id, status, provider, sniffed_type, size_bytes, duration_ms, sample_rate, channels, quality_report,
       failure_reason, voice_id, expires_at, created_at
  from public.voice_samples
 where id = %(id)s;

-- name: list_samples
-- Run as the caller: RLS shows only their own samples.
select id, status, provider, sniffed_type, size_bytes, duration_ms, sample_rate, channels, quality_report,
       failure_reason, voice_id, expires_at, created_at
  from public.voice_samples
 order by created_at desc, id
 limit %(limit)s;
