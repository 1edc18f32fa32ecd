-- The second step of 20261128080000_ownership_reading, in a transaction of its own: validating a constraint scans
-- the table under a lock that lets reads and writes go on.

set lock_timeout = '4s';

alter table public.voice_samples validate constraint voice_samples_status_check;
alter table voicegate.ownership_holds validate constraint ownership_holds_state_check;
alter table voicegate.ownership_holds validate constraint ownership_hold_decided;
alter table voicegate.ownership_holds validate constraint ownership_holds_reading_consent_id_fkey;
