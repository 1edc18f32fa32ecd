-- Voice manifests are written without a database lock held through the upload (issue 45): the writer
-- took the voice row `for no key update` and kept it, with its transaction, until Storage had answered,
-- so every transition that updates the voice (an attempt's completion, a provider switch, the deletion)
-- waited on Storage, for as long as Storage took. A writer now uploads outside any transaction and records
-- the file's digest afterwards, only if the voice is still as it read it (backend/clone/manifest.py).
--
-- Such a write is announced here before its upload and ended once it is recorded or its object removed.
-- While it is under way the object may hold its bytes without the record saying so: a reader takes an object
-- that matches its record or any write announced for it as voicegate's (backend/storage/integrity.py), and
-- the worker's sweep finishes a write whose writer died (an announcement older than any upload lasts).

set lock_timeout = '4s';

create table voicegate.service_object_writes (
  id bigint generated always as identity primary key,
  bucket_id text not null,
  name text not null,
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  size_bytes bigint not null check (size_bytes >= 0),
  started_at timestamptz not null default now()
);
create index service_object_writes_object_idx on voicegate.service_object_writes (bucket_id, name);
create index service_object_writes_started_idx on voicegate.service_object_writes (started_at);
alter table voicegate.service_object_writes enable row level security;
revoke all on voicegate.service_object_writes from public, anon, authenticated;
grant select, insert, update, delete on voicegate.service_object_writes to service_role;
