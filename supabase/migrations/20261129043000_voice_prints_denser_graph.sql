-- The registry's HNSW graph built denser: each print linked to 32 neighbours (`m`; pgvector's default 16), found
-- from a list of 128 as it is inserted (`ef_construction`; 64), so that a search needs fewer candidates for the
-- same recall: its `hnsw.ef_search` is 60 (backend/records/ownership.sql; 100 on the sparser graph). The figures,
-- a million prints each way, are in docs/benchmarks.md (Voice ownership).
--
-- `m` and `ef_construction` are read when the graph is built, so it is built again here: REINDEX holds the
-- registry's writes (a new print waits) while it runs, which on a registry of a few thousand prints is moments. An
-- operator with a large registry builds it ahead without holding writes (docs/ownership.md: the same ALTER INDEX,
-- then REINDEX INDEX CONCURRENTLY), and this finds the settings there and leaves the graph as it is.

set lock_timeout = '4s';

-- The registry exists where pgvector does (20261127080500_voice_ownership).
do $$
begin
  if to_regclass('voicegate.voice_prints_embedding_idx') is null then
    return;
  end if;
  if (select reloptions from pg_catalog.pg_class where oid = 'voicegate.voice_prints_embedding_idx'::regclass)
       @> array['m=32', 'ef_construction=128'] then
    return;
  end if;
  alter index voicegate.voice_prints_embedding_idx set (m = 32, ef_construction = 128);
  reindex index voicegate.voice_prints_embedding_idx;
end
$$;
