-- Less written per clone attempt (issue 29), the audit trail untouched.
--
-- A provider reference names its owner only so that RLS can show it to them: the owner is the voice's own
-- (voicegate.record_provider_reference copies it from the attempt), and the reference goes with its voice
-- (on delete cascade), which goes with its owner. The owner's foreign key protected nothing beyond that,
-- and cost every attempt that reached `ready` a row lock on its owner's auth.users row (with several of
-- one owner's attempts ending at once, a new MultiXact each time).

set lock_timeout = '4s';

-- squawk-ignore ban-drop-constraint -- meant: the guarantee it gave is the voice's cascade, as said above
alter table public.voice_provider_references drop constraint voice_provider_references_owner_id_fkey;

-- The voice row follows its active attempt (voicegate.publish_attempt), and is rewritten on every move of
-- it, most of which (the lease, the enrolment key, verifying) leave it as the attempt's insert published
-- it. An update that changes nothing is skipped, before voices_touch would stamp it (triggers fire in
-- the order of their names): the row is still locked as the update's, so writers order as before, but
-- no new row version, no updated_at that moved for nothing. No query counts a voice update's rows
-- (the one with `returning`, deletion, always sets deleted_at).
create trigger voices_skip_unchanged before update on public.voices
  for each row execute function pg_catalog.suppress_redundant_updates_trigger();
