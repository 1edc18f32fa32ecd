-- The rest of the clone lifecycle's single-column CHECKs held by domains (issue 48), as
-- 20261125100200_value_lists_as_domains.sql did for its lists of values, for the same reason: PostgreSQL
-- compiles every CHECK of a table again in each statement that writes one of its rows, reading each back
-- from its stored form, whatever the statement changes. An attempt's lease and completion still compiled
-- eleven on voice_clone_attempts, and its events, provider reference, voice and manifest write theirs: about a
-- tenth of the server's CPU per attempt (the bare equivalent's backends, with and without them). A domain's
-- CHECK is compiled once per connection and checked only where a value of another type is stored in the
-- column. The values allowed and the error on any other (SQLSTATE 23514, check_violation) are unchanged.
--
-- Left as table CHECKs: the three that tie two columns together (attempt_lease_complete,
-- attempt_preview_consistent, voice_provider_reference_gone_complete), and those on voices.name and
-- voices.tts_provider, which an expression index and a partial index name: their type change would build the
-- index again, reading the whole table under this migration's lock. voice_clone_attempts.status has its domain
-- though the partial index voice_clone_attempts_open_idx and the condition of the
-- voice_clone_attempts_settled trigger name it: it is the longest of the eleven and in both of an attempt's
-- updates. The trigger is made again as it was, in this transaction; the index, which holds only the open
-- attempts, is built again under the lock: its build reads the table (20 ms for 100,000 attempts, 45 MB, read
-- from memory).
--
-- As before: each domain has no CHECK when its columns take it (text to a domain over text, and so on, is
-- binary-coercible: no table is rewritten), gets it NOT VALID (no scan: every stored value passed the table
-- CHECK it replaces, dropped last in the same transaction), so no value is ever unchecked.

set lock_timeout = '4s';

create domain public.attempt_status as text;
create domain public.attempt_error_message as text;
create domain public.likeness as double precision;
create domain public.likeness_threshold as double precision;
create domain public.likeness_source as text;
create domain public.likeness_error as text;
create domain public.retry_count as integer;
create domain public.voiceprint as bytea;
create domain public.attempt_actor as text;
create domain public.provider_voice_id as text;
create domain public.provider_gone_reason as text;
create domain public.language_tag as text;
create domain voicegate.sha256_hex as text;
create domain voicegate.byte_count as bigint;

-- The trigger's condition names `status`: made again, word for word, once the column has its domain.
drop trigger voice_clone_attempts_settled on public.voice_clone_attempts;

-- squawk-ignore changing-column-type
alter table public.voice_clone_attempts alter column status type public.attempt_status;
-- squawk-ignore changing-column-type
alter table public.voice_clone_attempts alter column last_error_message type public.attempt_error_message;
-- squawk-ignore changing-column-type
alter table public.voice_clone_attempts alter column likeness type public.likeness;
-- squawk-ignore changing-column-type
alter table public.voice_clone_attempts alter column likeness_threshold type public.likeness_threshold;
-- squawk-ignore changing-column-type
alter table public.voice_clone_attempts alter column likeness_source type public.likeness_source;
-- squawk-ignore changing-column-type
alter table public.voice_clone_attempts alter column likeness_error type public.likeness_error;
-- squawk-ignore changing-column-type
alter table public.voice_clone_attempts alter column retry_count type public.retry_count;
-- squawk-ignore changing-column-type
alter table public.voice_clone_attempts alter column max_retries type public.retry_count;
-- squawk-ignore changing-column-type
alter table public.voice_clone_attempts alter column sample_voiceprint type public.voiceprint;
-- squawk-ignore changing-column-type
alter table public.voice_clone_attempt_events alter column actor type public.attempt_actor;
-- squawk-ignore changing-column-type
alter table public.voice_provider_references alter column provider_voice_id type public.provider_voice_id;
-- squawk-ignore changing-column-type
alter table public.voice_provider_references alter column gone_reason type public.provider_gone_reason;
-- squawk-ignore changing-column-type
alter table public.voices alter column language type public.language_tag;
-- squawk-ignore changing-column-type
alter table voicegate.service_object_writes alter column sha256 type voicegate.sha256_hex;
-- squawk-ignore changing-column-type
alter table voicegate.service_object_writes alter column size_bytes type voicegate.byte_count;

create trigger voice_clone_attempts_settled
  after update of status on public.voice_clone_attempts
  for each row
  when (old.status is distinct from new.status and new.status in ('ready', 'failed', 'canceled', 'superseded'))
  execute function voicegate.attempt_settled();

-- NOT VALID: no scan, as every stored value passed the table CHECK still in force until the end of this file.
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.attempt_status add constraint attempt_status_check
  check (value in ('queued', 'processing', 'verifying', 'ready', 'failed', 'canceled', 'superseded')) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.attempt_error_message add constraint attempt_error_message_check
  check (length(value) <= 500) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.likeness add constraint likeness_check check (value >= -1 and value <= 1) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.likeness_threshold add constraint likeness_threshold_check
  check (value >= 0 and value <= 1) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.likeness_source add constraint likeness_source_check
  check (value in ('probe', 'preview', 'render')) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.likeness_error add constraint likeness_error_check
  check (length(value) >= 1 and length(value) <= 60) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.retry_count add constraint retry_count_check check (value >= 0) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.voiceprint add constraint voiceprint_check check (octet_length(value) = 1024) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.attempt_actor add constraint attempt_actor_check
  check (length(value) >= 1 and length(value) <= 200) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.provider_voice_id add constraint provider_voice_id_check
  check (length(value) >= 1 and length(value) <= 500) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.provider_gone_reason add constraint provider_gone_reason_check
  check (value in ('voice_not_found', 'model_retired')) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.language_tag add constraint language_tag_check
  check (value ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$') not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain voicegate.sha256_hex add constraint sha256_hex_check check (value ~ '^[0-9a-f]{64}$') not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain voicegate.byte_count add constraint byte_count_check check (value >= 0) not valid;

-- Each is its column's domain's now.
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_status_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_last_error_message_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_likeness_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_likeness_threshold_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_likeness_source_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_likeness_error_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_retry_count_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_max_retries_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_sample_voiceprint_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempt_events drop constraint voice_clone_attempt_events_actor_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_provider_references drop constraint voice_provider_references_provider_voice_id_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_provider_references drop constraint voice_provider_references_gone_reason_check;
-- squawk-ignore ban-drop-constraint
alter table public.voices drop constraint voices_language_check;
-- squawk-ignore ban-drop-constraint
alter table voicegate.service_object_writes drop constraint service_object_writes_sha256_check;
-- squawk-ignore ban-drop-constraint
alter table voicegate.service_object_writes drop constraint service_object_writes_size_bytes_check;
