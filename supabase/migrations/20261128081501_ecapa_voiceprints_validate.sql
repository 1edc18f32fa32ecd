-- The second step of 20261128081500_ecapa_voiceprints, in a transaction of its own: validating a constraint scans
-- the table under a lock that lets reads and writes go on.

set lock_timeout = '4s';

alter table public.voice_consents validate constraint voice_consents_voiceprint_check;
alter table public.voice_samples validate constraint voice_samples_voiceprint_check;
alter table public.voice_samples validate constraint voice_samples_speech_prints_check;
alter domain public.voiceprint validate constraint voiceprint_check;
