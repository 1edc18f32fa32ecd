-- name: insert_spoken
-- A spoken consent awaiting its recording, for the caller (the service writes it: its state is not theirs). No row
-- while they have `open_consents` awaiting theirs: counted under their lock on consent creates
-- (user_creates.take), so this statement's snapshot, taken after it, holds every consent another create committed.
insert into public.voice_consents (owner_id, subject_name, consent_text_version, user_agent, ip_hash, keep_sample,
                                   kind, status, phrase, code, language, expires_at)
select %(owner_id)s, %(subject_name)s, %(consent_text_version)s, %(user_agent)s, %(ip_hash)s, %(keep_sample)s,
       'spoken', 'awaiting_recording', %(phrase)s, %(code)s, %(language)s,
       now() + make_interval(secs => %(valid_seconds)s)
 where (select count(*) from public.voice_consents
         where owner_id = %(owner_id)s and kind = 'spoken' and status in ('awaiting_recording', 'rejected')
           and expires_at > now()) < %(open_consents)s
returning id, phrase, status, expires_at;

-- name: first_open_lapses
-- Seconds until the first of the owner's consents awaiting a recording lapses (a rejected one may be recorded
-- again until then too); from the clock, not the transaction's start, which may be before that consent was made.
select extract(epoch from min(expires_at) - clock_timestamp())::double precision as seconds
  from public.voice_consents
 where owner_id = %(owner_id)s and kind = 'spoken' and status in ('awaiting_recording', 'rejected')
   and expires_at > now();

-- name: insert_checkbox
-- A ticked box, as the user writes it (RLS: their own).
insert into public.voice_consents (subject_name, consent_text_version, user_agent, ip_hash, keep_sample)
values (%(subject_name)s, %(consent_text_version)s, %(user_agent)s, %(ip_hash)s, %(keep_sample)s)
returning id;

-- name: visible_consent
-- The caller's consent (RLS decides whose), with whether its time to be recorded has passed.
select id, kind, status, subject_name, language, phrase, code, expires_at, word_accuracy, speech_seconds,
       refusal, verified_at, evidence_expires_at, evidence_purged_at, keep_sample,
       status = 'awaiting_recording' and expires_at <= now() as lapsed
  from public.voice_consents
 where id = %(id)s;

-- name: lock_consent
-- The consent a recording is being judged for, locked against a second recording judged at once.
select id, owner_id, status, code, expires_at <= now() as lapsed
  from public.voice_consents
 where id = %(id)s
   for no key update;

-- name: verify
-- A recording said the phrase: the consent is verified, with its evidence kept under the samples' retention.
update public.voice_consents
   set status = 'verified', statement_sample_path = %(path)s, recording_sha256 = %(sha256)s,
       voiceprint = %(voiceprint)s, word_accuracy = %(word_accuracy)s, speech_seconds = %(speech_seconds)s,
       refusal = null, verified_at = now(),
       evidence_expires_at = now() + make_interval(secs => %(retention_days)s::double precision * 86400)
 where id = %(id)s and status in ('awaiting_recording', 'rejected');

-- name: reject
-- A recording did not say the phrase (or came too late): the consent says why; another may follow in time.
update public.voice_consents
   set status = 'rejected', refusal = %(refusal)s, word_accuracy = %(word_accuracy)s,
       speech_seconds = %(speech_seconds)s
 where id = %(id)s and status in ('awaiting_recording', 'rejected');

-- name: usable_consent
-- Whether the caller's consent a sample is to be stored under can cover it (its voiceprint is the service's to
-- read: `consent_voiceprint`).
select kind, status, evidence_purged_at is not null as purged,
       status = 'awaiting_recording' and expires_at <= now() as lapsed
  from public.voice_consents
 where id = %(id)s;

-- name: consent_voiceprint
-- A consent's voiceprint, as the service reads it to judge a sample stored under it (null for a checkbox one,
-- and for a spoken one whose evidence was purged).
select kind, voiceprint from public.voice_consents where id = %(id)s;
