-- A user's creates of one kind wait for each other on their bucket's row (`take_create`), and a burst of them
-- queues there. A wait that reached the statement's deadline was cut as a database outage (503) although the
-- database was well; past this lock timeout, shorter than the default deadline (1 s), the create is refused as
-- too many at once instead (429 `creates_limited`, retried after a second).

set lock_timeout = '4s';

alter function voicegate.take_create(uuid, text, integer, double precision) set lock_timeout = '800ms';
