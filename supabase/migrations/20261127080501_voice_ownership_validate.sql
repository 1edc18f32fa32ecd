-- The second step of 20261127080500_voice_ownership: validating the widened checks scans each table under a lock
-- that lets reads and writes go on.

set lock_timeout = '4s';

alter table public.voice_consents validate constraint voice_consents_status_check;
alter table public.voice_consents validate constraint voice_consents_refusal_check;
alter table public.voice_samples validate constraint voice_samples_status_check;
