-- The list of providers in one place, the `voice_provider` domain's CHECK (issue 57): the columns of
-- voice_samples (`provider`, `processed_provider`) and voice_clone_outbox (`provider`) take the domain, as
-- voice_clone_attempts and voice_provider_references took it in 20261125100200_value_lists_as_domains.sql, and
-- voices.tts_provider's CHECK becomes a cast to it. Their four table CHECKs, each the list again, are dropped. A
-- new provider is then one domain's change and nothing else:
--
--   -- squawk-ignore ban-drop-constraint
--   alter domain public.voice_provider drop constraint voice_provider_check;
--   -- squawk-ignore ban-alter-domain-with-add-constraint
--   alter domain public.voice_provider add constraint voice_provider_check
--     check (value in ('local', 'qwen', 'elevenlabs', 'cartesia', 'selfhosted', 'acme')) not valid;
--
-- (NOT VALID: every stored value passed the narrower list; tests/integration/test_provider_list.py holds the
-- schema to one list.)
--
-- voices.tts_provider keeps type text: the partial unique index voices_provider_voice_uidx names it, and a type
-- change would build that index again, reading the whole table under this migration's lock (as
-- 20261126090601_checks_as_domains.sql says). Its CHECK casts the value to the domain, which refuses one not in
-- the list, and is short: nothing long is compiled again by each write of a voice.
--
-- Nothing is rewritten or scanned: the table CHECKs go before the type changes (a type change checks again the
-- CHECKs on its column, reading the table); the domain has no CHECK while its columns take it (a domain with one
-- would have each table rewritten) and gets it back NOT VALID, as does voices' new CHECK (every stored value
-- passed the list they replace). All in this transaction, so no value is written unchecked. The values allowed and
-- the error on any other (SQLSTATE 23514, check_violation) are unchanged.

set lock_timeout = '4s';

-- squawk-ignore ban-drop-constraint
alter table public.voice_samples drop constraint voice_samples_provider_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_samples drop constraint voice_samples_processed_provider_check;
-- squawk-ignore ban-drop-constraint
alter table public.voice_clone_outbox drop constraint voice_clone_outbox_provider_check;
-- squawk-ignore ban-drop-constraint
alter table public.voices drop constraint voices_tts_provider_check;

-- Added back below, once its columns have it.
-- squawk-ignore ban-drop-constraint
alter domain public.voice_provider drop constraint voice_provider_check;

-- Text to a domain over text with no CHECK: binary-coercible, nothing rewritten, no index on these columns.
-- squawk-ignore changing-column-type
alter table public.voice_samples alter column provider type public.voice_provider;
-- squawk-ignore changing-column-type
alter table public.voice_samples alter column processed_provider type public.voice_provider;
-- squawk-ignore changing-column-type
alter table public.voice_clone_outbox alter column provider type public.voice_provider;

-- The list, once.
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.voice_provider add constraint voice_provider_check
  check (value in ('local', 'qwen', 'elevenlabs', 'cartesia', 'selfhosted')) not valid;

-- The cast raises the domain's check_violation for a value not in the list; null passes, as before.
alter table public.voices add constraint voices_tts_provider_check
  check (tts_provider::public.voice_provider = tts_provider) not valid;
