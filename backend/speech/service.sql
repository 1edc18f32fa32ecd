-- name: open_stream
-- As the service, in the transaction that checked the caller may speak with the voice, sent with its first
-- sentence's reservation and the COMMIT: written only once that is in the ledger (a stream the quota refuses
-- leaves no row).
insert into public.speech_streams
  (id, owner_id, voice_id, reflection_id, attempt_id, provider, provider_voice_id, format, text_characters)
select %(id)s, %(owner_id)s, %(voice_id)s, %(reflection_id)s, %(attempt_id)s, %(provider)s, %(provider_voice_id)s,
       %(format)s, %(text_characters)s
 where exists (select from voicegate.usage_events e
                where e.kind = 'stream' and e.work_id = %(id)s and e.call_key = '0');

-- name: finish_stream
update public.speech_streams
   set characters = %(characters)s, audio_ms = %(audio_ms)s, outcome = %(outcome)s, error_code = %(error_code)s,
       finished_at = now()
 where id = %(id)s and outcome = 'streaming';

-- name: record_seconds
-- As the service: the seconds each sentence sent made, on its ledger row (`call_key` is its index).
update voicegate.usage_events e
   set audio_seconds = s.seconds
  from unnest(%(calls)s::text[], %(seconds)s::float8[]) as s (call_key, seconds)
 where e.kind = 'stream' and e.work_id = %(id)s and e.call_key = s.call_key;

-- name: never_opened
-- As the service: a stream refused 503 as its opening's COMMIT went unanswered, which never spoke, ended once the
-- database answers again (nothing to do when that COMMIT never happened).
update public.speech_streams
   set characters = 0, audio_ms = 0, outcome = 'failed', error_code = %(error_code)s, finished_at = now()
 where id = %(id)s and outcome = 'streaming';
