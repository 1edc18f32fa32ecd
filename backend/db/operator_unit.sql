-- name: lock_timeout
-- A script transaction waits at most a few seconds for a row lock, so a script never queues up behind,
-- or in front of, live work.
select set_config('lock_timeout', %(lock_timeout)s, true);

-- name: read_only
-- Dry runs: the database itself refuses any write in this transaction.
set transaction read only;

-- name: database_now
select now() as now;
