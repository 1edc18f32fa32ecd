-- name: send
select pgmq.send(%(queue)s, %(message)s::jsonb, %(delay)s::integer) as msg_id;
