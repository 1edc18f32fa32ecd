-- Which of pgmq's queues are voicegate's work queues, in the database, each named by the migration that creates
-- it (issue 48: a new consumer touched deploy/k8s/keda.yaml as well). The KEDA scaler sums their depth by joining
-- this table instead of spelling the names in its query: a Supabase project may hold queues of its own, and the
-- dead-letter queue is consumed by nobody, so neither is in it. A queue created later adds its row here, in the
-- migration that creates it. backend/queues.py's WORK_QUEUES is held to these rows (tests/integration/test_queues.py).

set lock_timeout = '4s';

create table voicegate.work_queues (
  queue_name text primary key
);

alter table voicegate.work_queues enable row level security;
revoke all on voicegate.work_queues from public;
grant select on voicegate.work_queues to service_role;

insert into voicegate.work_queues (queue_name)
values ('voice_clone_process'), ('voice_preview'), ('voice_sample_process'), ('voice_synthesis'),
       ('webhook_delivery');
