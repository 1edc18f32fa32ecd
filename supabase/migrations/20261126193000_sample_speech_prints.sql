-- A sample keeps the embedding of each of its partial utterances, with the seconds of the sample each stands for
-- (issue 56): its voiceprint is their mean, so 4 s of the consenting voice before 20 s of another passed as the
-- consenting voice (0.756, from 0.74). The sample check judges the partials window by window as it runs; a set of
-- samples made into one voice is judged the same way, from these, against its consent and its other samples.
-- backend.voiceprint.SpeechPrints writes them: per partial two float32 seconds and 256 float16 values, 520 bytes.
-- Null for a sample checked before, which a set judges by its voiceprint alone.
--
-- Biometric data like the voiceprint, and the service's alone: users are granted the columns of voice_samples
-- one by one (20261126183000_voiceprints_service_only.sql), and this one is not among them.

set lock_timeout = '4s';

alter table public.voice_samples
  add column speech_prints bytea check (length(speech_prints) > 0 and length(speech_prints) % 520 = 0);
