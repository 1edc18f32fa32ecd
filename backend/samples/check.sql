-- name: record_processed_sample
-- As the service.
-- Nothing comes back when the sample was deleted meanwhile: then no copy is stored.
update public.voice_samples
   set processed_object_path = %(processed_object_path)s,
       processed_provider = %(processed_provider)s,
       quality_report = %(quality_report)s::jsonb,
       duration_ms = %(duration_ms)s,
       sample_rate = %(sample_rate)s,
       channels = %(channels)s,
       voiceprint = %(voiceprint)s,
       speaker_match = %(speaker_match)s,
       speech_prints = %(speech_prints)s,
       status = 'ready',
       failure_reason = null
 where id = %(sample_id)s
returning id;

-- name: hold_sample
-- As the service.
-- Its voice matched another account's print: held for an operator's review (records/ownership.py), checked and
-- stored in full, so that a release makes it ready as it stands.
update public.voice_samples set status = 'held' where id = %(sample_id)s;

-- name: ask_sample
-- As the service.
-- Its voice matched another account's: it waits for its uploader's reading (docs/ownership.md).
update public.voice_samples set status = 'awaiting_reading' where id = %(sample_id)s;

-- name: refuse_owned_sample
-- As the service.
-- Its voice matched another account's print under VOICEGATE_VOICE_OWNERSHIP=refuse.
update public.voice_samples set status = 'failed', failure_reason = %(reason)s where id = %(sample_id)s;

-- name: record_mismatched_sample
-- As the service.
-- Its speaker is not its consent's, or it holds two: failed, with the report, the prints and the score, for the
-- record.
update public.voice_samples
   set status = 'failed', failure_reason = %(reason)s, quality_report = %(quality_report)s::jsonb,
       voiceprint = %(voiceprint)s, speaker_match = %(speaker_match)s, speech_prints = %(speech_prints)s
 where id = %(sample_id)s;

-- name: record_rejected_sample
update public.voice_samples
   set status = 'failed', failure_reason = %(reason)s, quality_report = %(quality_report)s::jsonb
 where id = %(sample_id)s;

-- name: fail_altered_sample
-- Its stored copy changed since voicegate wrote it; the report and measurements stay for the record.
update public.voice_samples
   set status = 'failed', failure_reason = %(reason)s
 where id = %(sample_id)s;
