-- The second step of 20261128070000_usage_sends, in a transaction of its own: validating a constraint scans the
-- table under a lock that lets reads and writes go on.

set lock_timeout = '4s';

alter table voicegate.usage_events validate constraint usage_events_sends;
