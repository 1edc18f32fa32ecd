-- A recording of a consent's phrase may be refused as `too_noisy` (issue 56): the phrase was not heard, and the
-- recording's speech-to-noise ratio says the room, not the reading, is what to change. The refusal's check
-- constraint is replaced by one that takes it, NOT VALID (new rows checked from here on): it widens the old one,
-- which every row meets; 20261126191001_consent_refusal_too_noisy_validate validates it in a transaction of its
-- own.

set lock_timeout = '4s';

-- squawk-ignore ban-drop-constraint -- replaced just below by one that takes every value it took
alter table public.voice_consents drop constraint voice_consents_refusal_check;
alter table public.voice_consents
  add constraint voice_consents_refusal_check
    check (refusal in ('phrase_mismatch', 'too_noisy', 'not_speech', 'too_short', 'expired', 'synthetic_speech'))
    not valid;
