-- name: insert_checkbox
-- A ticked box, as the user writes it (RLS: their own).
insert into public.voice_consents (subject_name, consent_text_version, user_agent, ip_hash, keep_sample)
values (%(subject_name)s, %(consent_text_version)s, %(user_agent)s, %(ip_hash)s, %(keep_sample)s)
returning id;

-- name: usable_consent
-- The state of the caller's consent a sample is to be stored under (its voiceprint is the service's to read:
-- `consent_voiceprint`).
select public.voice_consent_state(c.kind, c.status, c.expires_at, c.evidence_purged_at) as state
  from public.voice_consents c
 where c.id = %(id)s;

-- name: consent_voiceprint
-- A consent's voiceprint, as the service reads it to judge a sample stored under it (null for a checkbox one,
-- and for a spoken one whose evidence was purged).
select kind, voiceprint from public.voice_consents where id = %(id)s;
