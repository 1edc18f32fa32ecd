-- A consent's state is `public.voice_consent_state` (migration 20261126190500_consent_state) in every statement
-- here, the reads and the guards of the writes alike: what each state allows is backend/policy/consent.py.

-- name: insert_spoken
-- A spoken consent awaiting its recording, for the caller (the service writes it: its state is not theirs), its
-- phrase valid for `valid_seconds` (VOICEGATE_CONSENT_PHRASE_SECONDS). No row while they have `open_consents`
-- taking a recording: counted under their lock on consent creates (user_creates.take), so this statement's
-- snapshot, taken after it, holds every consent another create committed.
insert into public.voice_consents (owner_id, subject_name, consent_text_version, user_agent, ip_hash, keep_sample,
                                   kind, status, phrase, code, language, expires_at)
select %(owner_id)s, %(subject_name)s, %(consent_text_version)s, %(user_agent)s, %(ip_hash)s, %(keep_sample)s,
       'spoken', 'awaiting_recording', %(phrase)s, %(code)s, %(language)s,
       now() + make_interval(secs => %(valid_seconds)s)
 where (select count(*) from public.voice_consents c
         where c.owner_id = %(owner_id)s
           and public.voice_consent_state(c.kind, c.status, c.expires_at, c.evidence_purged_at)
               in ('awaiting_recording', 'rejected')) < %(open_consents)s
returning id, phrase, status, expires_at;

-- name: first_open_lapses
-- Seconds until the first of the owner's consents taking a recording lapses; from the clock, not the transaction's
-- start, which may be before that consent was made.
select extract(epoch from min(c.expires_at) - clock_timestamp())::double precision as seconds
  from public.voice_consents c
 where c.owner_id = %(owner_id)s
   and public.voice_consent_state(c.kind, c.status, c.expires_at, c.evidence_purged_at)
       in ('awaiting_recording', 'rejected');

-- name: visible_consent
-- The caller's consent (RLS decides whose), in its state.
select c.id, c.kind, public.voice_consent_state(c.kind, c.status, c.expires_at, c.evidence_purged_at) as state,
       c.subject_name, c.language, c.phrase, c.code,
       c.expires_at, c.word_accuracy, c.speech_seconds, c.refusal, c.verified_at, c.evidence_expires_at,
       c.evidence_purged_at
  from public.voice_consents c
 where c.id = %(id)s;

-- name: lock_consent
-- The consent a recording's verdict is written for, in its state now, locked against a second verdict at once.
select public.voice_consent_state(c.kind, c.status, c.expires_at, c.evidence_purged_at) as state
  from public.voice_consents c
 where c.id = %(id)s
   for no key update;

-- name: verify
-- As the service.
-- A recording said the phrase: the consent is `verified`, or `held` for review when its voice matched another
-- account's (records/ownership.py), with its evidence kept under the samples' retention either way.
update public.voice_consents c
   set status = %(status)s, statement_sample_path = %(path)s, recording_sha256 = %(sha256)s,
       voiceprint = %(voiceprint)s, word_accuracy = %(word_accuracy)s, speech_seconds = %(speech_seconds)s,
       refusal = null, verified_at = case when %(status)s = 'verified' then now() end,
       evidence_expires_at = now() + make_interval(secs => %(retention_days)s::double precision * 86400)
 where c.id = %(id)s
   and public.voice_consent_state(c.kind, c.status, c.expires_at, c.evidence_purged_at)
       in ('awaiting_recording', 'rejected')
returning c.id;

-- name: reject
-- A recording did not say the phrase: the consent says why; another may follow while the phrase is valid.
update public.voice_consents c
   set status = 'rejected', refusal = %(refusal)s, word_accuracy = %(word_accuracy)s,
       speech_seconds = %(speech_seconds)s
 where c.id = %(id)s
   and public.voice_consent_state(c.kind, c.status, c.expires_at, c.evidence_purged_at)
       in ('awaiting_recording', 'rejected')
returning c.id;

-- name: sample_to_read
-- The caller's sample (RLS decides whose) a reading is asked for, with the name and language of its consent.
select s.id, s.status, coalesce(s.language, c.language) as language, c.subject_name
  from public.voice_samples s
  join public.voice_consents c on c.id = s.consent_id
 where s.id = %(id)s;
