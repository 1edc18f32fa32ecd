-- Spoken consent (issue 46): besides the checkbox, a consent can be a recording of a phrase that names its
-- subject and voicegate and ends with a one-time code of four digits, checked offline for its words and kept,
-- with the speaker's voiceprint, as evidence; every sample made under it must be the same speaker.
--
-- A consent is `checkbox` (`accepted` as it is made: today's contract) or `spoken`: `awaiting_recording`
-- until a recording says its phrase (`verified`) or does not (`rejected`, with the reason; another recording
-- may follow until `expires_at`). The recording and the voiceprint are evidence under the samples' retention:
-- past `evidence_expires_at` both are purged, and the consent covers no new sample.
--
-- Samples keep their own voiceprint and how well it matched their consent's (`speaker_match`, the cosine).
-- Clients still insert only checkbox consents (the columns they may write are unchanged): the state of a
-- spoken one is the service's to write. The two table constraints are added NOT VALID (new rows checked from
-- here on); 20261126014001_spoken_consent_validate validates them and builds the purge's index concurrently.

set lock_timeout = '4s';

alter table public.voice_consents
  add column kind text not null default 'checkbox' check (kind in ('checkbox', 'spoken')),
  add column status text not null default 'accepted'
    check (status in ('accepted', 'awaiting_recording', 'verified', 'rejected')),
  add column phrase text check (length(phrase) between 1 and 1000),
  add column code text check (code ~ '^[0-9]{4}$'),
  add column language text check (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
  add column expires_at timestamptz,
  add column recording_sha256 text check (recording_sha256 ~ '^[0-9a-f]{64}$'),
  add column voiceprint bytea check (length(voiceprint) = 1024),
  add column word_accuracy real check (word_accuracy between 0 and 1),
  add column speech_seconds real check (speech_seconds >= 0),
  add column refusal text check (refusal in ('phrase_mismatch', 'not_speech', 'too_short', 'expired')),
  add column verified_at timestamptz,
  add column evidence_expires_at timestamptz,
  add column evidence_purged_at timestamptz,
  add constraint voice_consents_kind_status check (
    (kind = 'checkbox' and status = 'accepted')
    or (kind = 'spoken' and status <> 'accepted' and phrase is not null and code is not null
        and language is not null and expires_at is not null)
  ) not valid,
  add constraint voice_consents_verified_has_evidence check (
    status <> 'verified' or evidence_purged_at is not null
    or (voiceprint is not null and statement_sample_path is not null and verified_at is not null)
  ) not valid;

alter table public.voice_samples
  add column voiceprint bytea check (length(voiceprint) = 1024),
  add column speaker_match real check (speaker_match between -1 and 1);

-- A spoken consent's evidence lives as long as the samples made under it: a sample stored under it extends
-- the evidence to the sample's own retention, so a sample is never judged after its consent's voiceprint went.
-- Security definer: a sample is inserted as its owner, who may not write a consent's state.
create function voicegate.extend_consent_evidence() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.voice_consents
     set evidence_expires_at = greatest(evidence_expires_at, new.expires_at)
   where id = new.consent_id and kind = 'spoken' and evidence_purged_at is null;
  return null;
end
$$;

revoke all on function voicegate.extend_consent_evidence() from public;

create trigger voice_samples_extend_consent_evidence after insert on public.voice_samples
  for each row execute function voicegate.extend_consent_evidence();
