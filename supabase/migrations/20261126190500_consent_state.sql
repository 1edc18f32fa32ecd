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
-- same function. In `public` and granted to signed-in users, as the service reads their consents as them (RLS),
-- and a Data API client may read it as a computed field of its consent (`select=*,voice_consent_state`).

set lock_timeout = '4s';

create function public.voice_consent_state(c public.voice_consents) returns text
language sql stable
set search_path = ''
as $$
  select case
    when c.kind = 'checkbox' then 'accepted'
    when c.evidence_purged_at is not null then 'purged'
    when c.status in ('awaiting_recording', 'rejected') and c.expires_at <= now() then 'expired'
    else c.status
  end
$$;

revoke all on function public.voice_consent_state(public.voice_consents) from public, anon;
grant execute on function public.voice_consent_state(public.voice_consents) to authenticated, service_role;
