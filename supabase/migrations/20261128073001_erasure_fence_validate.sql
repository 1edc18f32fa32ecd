-- The second step of 20261128073000_erasure_fence: validating the item kinds' check scans the table under a lock
-- that lets reads and writes go on.

set lock_timeout = '4s';

alter table voicegate.erasure_items validate constraint erasure_items_kind_check;
