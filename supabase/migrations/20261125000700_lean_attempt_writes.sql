-- Less written per clone attempt (issue 29), the audit trail untouched.
--
-- A provider reference names its owner only so that RLS can show it to them: the owner is the voice's own
-- (voicegate.record_provider_reference copies it from the attempt), and the reference goes with its voice
-- (on delete cascade), which goes with its owner. The owner's foreign key protected nothing beyond that,
-- and cost every attempt that reached `ready` a row lock on its owner's auth.users row (with several of
-- one owner's attempts ending at once, a new MultiXact each time).
alter table public.voice_provider_references drop constraint voice_provider_references_owner_id_fkey;
