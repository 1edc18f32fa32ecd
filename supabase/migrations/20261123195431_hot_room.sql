set lock_timeout = '4s';
-- Two ALTER TABLEs that rewrite nothing: each ends at once, or its lock times out first.
set local statement_timeout = '4s';

-- Room on each page for a row's next version (issue 29), so that an update which changes no indexed column
-- stays on its page (a HOT update): no new entry in any of the table's indexes, no index page to lock.
-- Changes only how new pages are filled: nothing is rewritten, and the table is not locked for long.
--
-- A voice row is rewritten by every move of its active attempt that reaches it (voicegate.publish_attempt:
-- its status, provider voice and metadata, none of them indexed once the voice carries its provider
-- voice). Packed full, as rows were, such an update moved the row to another page and added an entry to
-- each of its three indexes (two of them keyed by columns it did not change).
alter table public.voices set (fillfactor = 80);

-- An attempt's moves change its status, which an index searches (the recovery sweep's open attempts), so
-- those are never HOT; but its runtime and preview moves (syncing, synced, a preview generating, ready,
-- heard) change no indexed column, and are HOT with room on the page.
alter table public.voice_clone_attempts set (fillfactor = 80);
