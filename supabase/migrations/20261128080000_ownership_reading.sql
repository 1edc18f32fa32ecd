-- A voice that matches another account's asks its uploader to read, rather than wait for a reviewer
-- (docs/ownership.md, "Asked to read"). Measured on real speech, a 1:N match at ten thousand voices holds nearly every
-- innocent new voice, while a 1:1 match of a reading to a sample is what speaker encoders do well: someone uploading
-- their own voice reads a consent phrase in it and goes on, and someone uploading another person's recordings
-- cannot. A sample can now be `awaiting_reading`; a hold can be `asked` (waiting for that reading, named by
-- `reading_consent_id` once a phrase is given) and `answered` (the reading matched the sample: settled without a
-- reviewer). The checks are replaced NOT VALID (each widens the old one, which every row meets) and validated by
-- 20261128080001_ownership_reading_validate.

set lock_timeout = '4s';

-- squawk-ignore ban-drop-constraint -- replaced just below by one that takes every value it took
alter table public.voice_samples drop constraint voice_samples_status_check;
alter table public.voice_samples
  add constraint voice_samples_status_check
    check (status in ('pending', 'processing', 'ready', 'failed', 'held', 'awaiting_reading')) not valid;

-- squawk-ignore ban-drop-constraint -- replaced just below by one that takes every value it took
alter table voicegate.ownership_holds drop constraint ownership_holds_state_check;
alter table voicegate.ownership_holds
  add constraint ownership_holds_state_check
    check (state in ('held', 'released', 'refused', 'asked', 'answered')) not valid;

-- squawk-ignore ban-drop-constraint -- replaced just below: an asked hold waits, as a held one does
alter table voicegate.ownership_holds drop constraint ownership_hold_decided;
alter table voicegate.ownership_holds
  add constraint ownership_hold_decided
    check ((state in ('held', 'asked')) = (decided_at is null and decided_by is null)) not valid;

-- The spoken consent whose reading answers an asked hold (the newest phrase given for it).
alter table voicegate.ownership_holds add column reading_consent_id uuid;
alter table voicegate.ownership_holds
  add constraint ownership_holds_reading_consent_id_fkey foreign key (reading_consent_id)
    references public.voice_consents (id) on delete set null not valid;
