-- name: dead_letter_count
select count(*) as n from pgmq.q_voice_dead_letter;
