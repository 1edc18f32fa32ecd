-- The speaker encoder is ECAPA-TDNN (SpeechBrain's spkrec-ecapa-voxceleb) instead of GE2E (issue 78): a voiceprint
-- is 192 float32 values, 768 bytes (GE2E's were 256, 1024 bytes), and a sample's stored partial 392 bytes (two
-- float32 seconds and 192 float16 values; GE2E's 520). Prints of the two encoders do not compare, so every stored
-- print of GE2E is re-printed from the recording it was taken of, or dropped (docs/ownership.md):
--
-- * a consent's and a sample's voiceprint stay, as GE2E's 1024 bytes, until re-printed from the consent's
--   reading or the sample's cleaned copy (`voicegate ops reprint-voiceprints`, which the worker's maintenance
--   sweep runs too); until then a sample under such a consent is re-printed with it as it is checked. A verified
--   consent must keep a print (voice_consents_verified_has_evidence), which is why they are not nulled here;
--   the checks take both lengths, the 1024 bytes of GE2E for what waits to be re-printed;
-- * a sample's partial prints are dropped here (their length does not say which encoder made them): the re-print
--   makes them again, and meanwhile a set judges the sample by its voiceprint, as one checked before they
--   were kept;
-- * an attempt's samples' print, kept only until its likeness is judged, is dropped: such an attempt's likeness
--   stays null ("no samples' print");
-- * the ownership registry is emptied and its vectors made 192-dimensional; the re-print registers each
--   verified consent's and ready sample's new print again. A new voice is not compared with a voice enrolled
--   before until that voice is re-printed.
--
-- The new checks are added NOT VALID (each takes every value the old one took, or null) and validated by
-- 20261128081501_ecapa_voiceprints_validate.

set lock_timeout = '4s';

-- squawk-ignore ban-drop-constraint -- replaced just below by one that takes every value it took
alter table public.voice_consents drop constraint voice_consents_voiceprint_check;
alter table public.voice_consents
  add constraint voice_consents_voiceprint_check check (length(voiceprint) in (768, 1024)) not valid;

-- squawk-ignore ban-drop-constraint -- replaced just below by one that takes every value it took
alter table public.voice_samples drop constraint voice_samples_voiceprint_check;
alter table public.voice_samples
  add constraint voice_samples_voiceprint_check check (length(voiceprint) in (768, 1024)) not valid;

update public.voice_samples set speech_prints = null where speech_prints is not null;
-- squawk-ignore ban-drop-constraint -- every value is null now, which the new check takes
alter table public.voice_samples drop constraint voice_samples_speech_prints_check;
alter table public.voice_samples
  add constraint voice_samples_speech_prints_check
    check (length(speech_prints) > 0 and length(speech_prints) % 392 = 0) not valid;

update public.voice_clone_attempts set sample_voiceprint = null where sample_voiceprint is not null;
-- squawk-ignore ban-drop-constraint -- every value is null now, which the new check takes
alter domain public.voiceprint drop constraint voiceprint_check;
-- squawk-ignore ban-alter-domain-with-add-constraint -- NOT VALID: no scan here; the column is all null
alter domain public.voiceprint add constraint voiceprint_check check (octet_length(value) = 768) not valid;

-- The registry exists where pgvector does (20261127080500_voice_ownership).
do $$
begin
  if to_regclass('voicegate.voice_prints') is null then
    return;
  end if;
  delete from voicegate.voice_prints;
  drop index voicegate.voice_prints_embedding_idx;
  alter table voicegate.voice_prints alter column embedding type extensions.vector(192);
  create index voice_prints_embedding_idx on voicegate.voice_prints
    using hnsw (embedding extensions.vector_cosine_ops);
end
$$;
