-- name: stale_consents
-- As the service.
-- Consents whose voiceprint is GE2E's (1024 bytes: the speaker encoder before ECAPA-TDNN), after `after`, in id
-- order: each is printed again from its kept reading.
select id, owner_id, status, statement_sample_path
  from public.voice_consents
 where length(voiceprint) = 1024 and id > %(after)s
 order by id
 limit %(limit)s;

-- name: stale_samples
-- As the service.
-- Samples whose voiceprint is GE2E's, after `after`, in id order: each is printed again from its cleaned copy.
select id, owner_id, status, bucket_id, processed_object_path
  from public.voice_samples
 where length(voiceprint) = 1024 and id > %(after)s
 order by id
 limit %(limit)s;

-- name: reprint_consent
-- As the service.
-- The consent's new print, where its print is still GE2E's (another re-print may have come first).
update public.voice_consents
   set voiceprint = %(voiceprint)s
 where id = %(id)s and length(voiceprint) = 1024
returning status;

-- name: reprint_sample
-- As the service.
-- The sample's new print and partial prints (null: none kept, its cleaned copy gone), where its print is still
-- GE2E's.
update public.voice_samples
   set voiceprint = %(voiceprint)s, speech_prints = %(speech_prints)s
 where id = %(id)s and length(voiceprint) = 1024
returning status;

-- name: stale_consent
-- As the service.
-- One consent, where its voiceprint is GE2E's.
select id, owner_id, status, statement_sample_path
  from public.voice_consents
 where id = %(id)s and length(voiceprint) = 1024;
