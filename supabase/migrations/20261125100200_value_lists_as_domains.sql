-- The lists of values the clone worker's writes check, held by domains rather than table CHECKs (issue 29).
--
-- PostgreSQL compiles every CHECK constraint of a table again in each statement that writes one of its
-- rows, all of them whatever the statement changes, reading each back from its stored form: a list such
-- as `status = ANY (ARRAY['queued', ...])` byte by byte. Each of an attempt's updates compiled eleven, and
-- a tenth of the server's time in the clone lifecycle went there (perf, the bare equivalent's backends). A domain's CHECK is compiled once per
-- connection and checked only where a value of another type is stored in the column (a text from a
-- client, a literal), so a function that copies a value from a row it read checks nothing again.
-- The values allowed and the error on any other (SQLSTATE 23514, check_violation) are unchanged.
--
-- The lists here are those of columns with no partial or expression index and no trigger condition on
-- them: changing such a column's type rebuilds nothing (the files of the four tables and of their indexes
-- stay the same). Each domain has no CHECK when its columns take it (a domain with one
-- would have each table rewritten), gets it NOT VALID at once (no scan: every stored value passed the
-- table CHECK it replaces, dropped last, in the same transaction), so no value is ever unchecked.

set lock_timeout = '4s';

create domain public.voice_provider as text;
create domain public.attempt_source as text;
create domain public.attempt_runtime_status as text;
create domain public.attempt_preview_status as text;
create domain public.attempt_event_dimension as text;
create domain public.voice_status as text;

-- Text to a domain over text with no CHECK yet: binary-coercible, nothing rewritten, no index rebuilt.
-- squawk-ignore changing-column-type
alter table public.voice_clone_attempts alter column provider type public.voice_provider;
-- squawk-ignore changing-column-type
alter table public.voice_clone_attempts alter column source type public.attempt_source;
-- squawk-ignore changing-column-type
alter table public.voice_clone_attempts alter column runtime_status type public.attempt_runtime_status;
-- squawk-ignore changing-column-type
alter table public.voice_clone_attempts alter column preview_status type public.attempt_preview_status;
-- squawk-ignore changing-column-type
alter table public.voice_provider_references alter column provider type public.voice_provider;
-- squawk-ignore changing-column-type
alter table public.voice_provider_references alter column reason type public.attempt_source;
-- squawk-ignore changing-column-type
alter table public.voice_clone_attempt_events alter column dimension type public.attempt_event_dimension;
-- squawk-ignore changing-column-type
alter table public.voices alter column status type public.voice_status;

-- NOT VALID: no scan, as every stored value passed the table CHECK still in force until the end of this file.
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.voice_provider add constraint voice_provider_check
  check (value in ('local', 'qwen', 'elevenlabs', 'cartesia', 'selfhosted')) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.attempt_source add constraint attempt_source_check
  check (value in ('sample_upload', 'custom_voice_id', 'legacy_outbox', 'conversation_audio', 'provider_migration',
                   'provider_churn')) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.attempt_runtime_status add constraint attempt_runtime_status_check
  check (value in ('pending', 'syncing', 'synced', 'sync_failed')) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.attempt_preview_status add constraint attempt_preview_status_check
  check (value in ('not_required', 'pending', 'generating', 'ready', 'completed')) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.attempt_event_dimension add constraint attempt_event_dimension_check
  check (value in ('status', 'runtime', 'preview', 'active', 'data')) not valid;
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.voice_status add constraint voice_status_check
  check (value in ('draft', 'cloning', 'ready', 'failed')) not valid;

-- Each list is its column's domain's now.
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_provider_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_source_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_runtime_status_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_preview_status_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_provider_references drop constraint voice_provider_references_provider_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_provider_references drop constraint voice_provider_references_reason_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_attempt_events drop constraint voice_clone_attempt_events_dimension_check;
-- squawk-ignore ban-drop-constraint
alter table public.voices drop constraint voices_status_check;
