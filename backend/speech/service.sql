-- name: open_stream
-- As the service, in the transaction that checked the caller may speak with the voice.
insert into public.speech_streams
  (owner_id, voice_id, reflection_id, attempt_id, provider, provider_voice_id, format, text_characters)
values (%(owner_id)s, %(voice_id)s, %(reflection_id)s, %(attempt_id)s, %(provider)s, %(provider_voice_id)s,
        %(format)s, %(text_characters)s)
returning id;

-- name: finish_stream
update public.speech_streams
   set characters = %(characters)s, audio_ms = %(audio_ms)s, outcome = %(outcome)s, error_code = %(error_code)s,
       finished_at = now()
 where id = %(id)s and outcome = 'streaming';
