-- One state for a consent, read the same wherever it is read (issue 56). A spoken consent whose phrase's time
-- passed was read as lapsed by one query (`status = 'awaiting_recording' and expires_at <= now()`) and as still
-- open by another, so a rejected consent never lapsed: it read `rejected` for ever, and a late recording was
-- checked in full and then refused 409 by the lock that did count its time. The state is now this function's:
--
--   accepted            a checkbox consent (as it is made)
--   awaiting_recording  a spoken consent made, its phrase not recorded yet
--   rejected            a recording of it did not say the phrase; another may follow while the phrase is valid
--   expired             awaiting_recording or rejected, past `expires_at`: it takes no recording and covers no
--                       sample (nothing is written when the time passes: the state is read from the clock)
--   verified            a recording said the phrase; it covers its speaker's samples
--   purged              verified, its evidence (the recording and the voiceprint) purged after its retention
--
-- What moves a consent between them is the service's (backend/consents/states.py); its writes are guarded by this
-- same function. In `public` and granted to signed-in users, as the service reads their consents as them (RLS). It
-- takes the four columns the state depends on, not the whole row: a user may read every column of their consent
-- but its voiceprint (20261126183000_voiceprints_service_only), so a whole-row reference is refused them.

set lock_timeout = '4s';

create function public.voice_consent_state(
  p_kind text, p_status text, p_expires_at timestamptz, p_evidence_purged_at timestamptz
) returns text
language sql stable
set search_path = ''
as $$
  select case
    when p_kind = 'checkbox' then 'accepted'
    when p_evidence_purged_at is not null then 'purged'
    when p_status in ('awaiting_recording', 'rejected') and p_expires_at <= now() then 'expired'
    else p_status
  end
$$;

revoke all on function public.voice_consent_state(text, text, timestamptz, timestamptz) from public, anon;
grant execute on function public.voice_consent_state(text, text, timestamptz, timestamptz)
  to authenticated, service_role;
