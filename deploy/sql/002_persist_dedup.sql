-- 002_persist_dedup: what persist needs to count a delta or an event once
-- even when it reaches the stream twice, beyond JetStream's duplicate window
-- (DESIGN.md §7, §8; deploy/sql/README.md). Re-runnable DDL (see 001).

-- The last HitBatch flush_seq applied per dns node. HitBatch (node,
-- flush_seq) is strictly increasing per node (the usage journal delivers in
-- order and retries the oldest first), so a batch at or below it was counted
-- already: persist skips it (and keeps a copy in dead_letters, reason
-- IBP_E_REPLAY). Written in the same transaction as the rows it covers.
CREATE TABLE IF NOT EXISTS persist_hit_flushes (
  node_id         VARCHAR(64)     NOT NULL,
  last_flush_seq  BIGINT UNSIGNED NOT NULL DEFAULT 0,
  last_stream_seq BIGINT UNSIGNED NOT NULL DEFAULT 0,  -- HITS sequence of that batch
  updated_at      DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
                                  ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (node_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Every Event.id applied. Consensus replicas compute the same deterministic
-- id for one change; a replica that publishes it again later (catching up
-- after a restart, say) must not open, close or delete anything twice. A
-- flap deletes its member_events row, so member_events.event_id alone
-- cannot remember it.
CREATE TABLE IF NOT EXISTS persist_event_ids (
  event_id   VARCHAR(128)    NOT NULL,
  stream_seq BIGINT UNSIGNED NOT NULL,                 -- EVENTS sequence that applied it
  PRIMARY KEY (event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
