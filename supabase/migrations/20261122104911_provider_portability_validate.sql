-- The second step of 20261122104910_provider_portability, in a transaction of its own: validating a
-- constraint scans the table under a lock that lets reads and writes go on (SHARE UPDATE EXCLUSIVE).

set lock_timeout = '4s';

alter table public.voices validate constraint voices_tts_provider_check;
alter table public.voice_clone_attempts validate constraint voice_clone_attempts_provider_check;
alter table public.voice_clone_outbox validate constraint voice_clone_outbox_provider_check;
alter table public.voice_samples validate constraint voice_samples_provider_check;
alter table public.voice_clone_attempts validate constraint voice_clone_attempts_source_check;
