-- The second step of 20261126191000_consent_refusal_too_noisy: validating the constraint scans the table under a
-- lock that lets reads and writes go on.

set lock_timeout = '4s';

alter table public.voice_consents validate constraint voice_consents_refusal_check;
