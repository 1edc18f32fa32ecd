-- No clone of a clone (issue 56.4): a spoken consent's recording that carries the watermark everything voicegate
-- synthesizes carries is rejected `synthetic_speech`. The refusal's check is replaced NOT VALID (checked for new
-- rows from here on); 20261126184601_synthetic_speech_validate validates it in a transaction of its own.

set lock_timeout = '4s';

-- squawk-ignore ban-drop-constraint -- replaced just below, NOT VALID, by one that allows more
alter table public.voice_consents drop constraint voice_consents_refusal_check;
alter table public.voice_consents add constraint voice_consents_refusal_check
  check (refusal in ('phrase_mismatch', 'not_speech', 'too_short', 'expired', 'synthetic_speech')) not valid;
