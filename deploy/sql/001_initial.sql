-- 001_initial: the schema persist writes (DESIGN.md §8). See README.md here for
-- every table, the deviations from the seed's DDL and why.
--
-- Rules for every migration file (ibp_schema_migrate, persist/schema.c):
--   * re-runnable: MariaDB commits DDL implicitly, so a crash between a
--     statement and the schema_version row means the file runs again; use
--     CREATE TABLE IF NOT EXISTS, ADD COLUMN IF NOT EXISTS, CREATE INDEX IF
--     NOT EXISTS, and so on;
--   * plain statements ended by ';' (no DELIMITER, no stored routines);
--   * never edit a file once released: add the next number instead.

-- Which migrations were applied. The current version is MAX(version).
-- Created first, so a half-applied 001 is still recognised as ours.
CREATE TABLE IF NOT EXISTS schema_version (
  version    INT UNSIGNED NOT NULL,
  name       VARCHAR(255) NOT NULL DEFAULT '',
  applied_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- DNS usage: hits per (UTC day, dns node, domain, member, network, country,
-- IP family). persist upserts HitBatch rows with
--   INSERT INTO requests (date, node_id, domain_name, member_name, network_asn,
--                         network_name, country_code, country_name, is_ipv6, hits)
--   VALUES (...) ON DUPLICATE KEY UPDATE hits = hits + VALUES(hits)
-- Every key column is NOT NULL DEFAULT '' and together they are the PRIMARY
-- KEY: updates of existing keys run ~2.3x faster than through a UNIQUE index
-- over nullable columns (DESIGN.md §8), and '' cannot slip past uniqueness
-- the way NULL does. Usage queries SUM(hits) over the columns they group by.
-- Key length: 2954 bytes of the 3072 InnoDB allows (utf8mb4, 4 bytes a char).
CREATE TABLE IF NOT EXISTS requests (
  date         DATE            NOT NULL,
  node_id      VARCHAR(64)     NOT NULL DEFAULT '',
  domain_name  VARCHAR(253)    NOT NULL DEFAULT '',
  member_name  VARCHAR(64)     NOT NULL DEFAULT '',
  network_asn  VARCHAR(32)     NOT NULL DEFAULT '',
  network_name VARCHAR(255)    NOT NULL DEFAULT '',
  country_code VARCHAR(2)      NOT NULL DEFAULT '',
  country_name VARCHAR(64)     NOT NULL DEFAULT '',
  is_ipv6      TINYINT(1)      NOT NULL DEFAULT 0,
  hits         BIGINT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (date, node_id, domain_name, member_name, network_asn, network_name,
               country_code, country_name, is_ipv6),
  KEY idx_domain_member_date (domain_name, member_name, date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Outage and override events with the seed's lifecycle (DESIGN.md §7): a down
-- status opens an event for its key unless one is open; an up status sets
-- end_time on the open one (or deletes it when shorter than the minimum
-- offline time). open_key is a hash of the event key while the event is open
-- and NULL once closed, so the UNIQUE index allows at most one open event per
-- key and any number of closed ones. It is generated: writers never set it
-- (list the columns in INSERTs) and find the open event of a key with
--   WHERE open_key = UNHEX(SHA2(CONCAT(LENGTH(?), ':', ?, ...same order...), 256))
-- The length prefixes make the encoding unambiguous whatever the fields hold.
CREATE TABLE IF NOT EXISTS member_events (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  check_type      VARCHAR(12)     NOT NULL DEFAULT '',  -- site, domain, endpoint, override
  check_name      VARCHAR(64)     NOT NULL DEFAULT '',
  endpoint        VARCHAR(512)    NOT NULL DEFAULT '',  -- '' unless check_type = endpoint
  member_name     VARCHAR(64)     NOT NULL DEFAULT '',
  domain_name     VARCHAR(253)    NOT NULL DEFAULT '',  -- '' for site checks
  status          TINYINT(1)      NOT NULL DEFAULT 0,   -- 0 down (what an event records), 1 up
  is_ipv6         TINYINT(1)      NOT NULL DEFAULT 0,
  start_time      DATETIME(3)     NOT NULL,             -- UTC, stream time of the opening Event
  end_time        DATETIME(3)     NULL DEFAULT NULL,    -- UTC; NULL while open
  error           TEXT            NULL,
  vote_data       JSON            NULL,                 -- voters that decided the change
  additional_data JSON            NULL,                 -- the observation's data_json
  event_id        VARCHAR(128)    NULL,                 -- Event.id that opened it
  end_event_id    VARCHAR(128)    NULL,                 -- Event.id that closed it
  open_key        BINARY(32) AS (IF(end_time IS NULL,
                    UNHEX(SHA2(CONCAT(LENGTH(check_type), ':', check_type,
                                      LENGTH(check_name), ':', check_name,
                                      LENGTH(member_name), ':', member_name,
                                      LENGTH(domain_name), ':', domain_name,
                                      LENGTH(endpoint), ':', endpoint,
                                      ':', is_ipv6), 256)),
                    NULL)) STORED,
  PRIMARY KEY (id),
  UNIQUE KEY uniq_open_event (open_key),
  UNIQUE KEY uniq_event_id (event_id),
  KEY idx_member_time (member_name, start_time),
  KEY idx_start_time (start_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The last stream sequence persist applied, per stream and durable consumer.
-- Written in the same transaction as the data it covers: that transaction is
-- what makes the effect of each message exactly once (DESIGN.md §8).
CREATE TABLE IF NOT EXISTS persist_offsets (
  stream     VARCHAR(128)    NOT NULL,
  consumer   VARCHAR(128)    NOT NULL,
  last_seq   BIGINT UNSIGNED NOT NULL DEFAULT 0,
  updated_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
                             ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (stream, consumer)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Messages persist could not apply (failed verification, undecodable, values
-- the schema cannot hold), kept for inspection instead of blocking the stream.
-- The primary key makes recording a redelivered message idempotent.
CREATE TABLE IF NOT EXISTS dead_letters (
  stream      VARCHAR(128)    NOT NULL,
  seq         BIGINT UNSIGNED NOT NULL,
  reason      VARCHAR(64)     NOT NULL,               -- status name, e.g. IBP_E_BAD_SIGNATURE
  detail      VARCHAR(512)    NOT NULL DEFAULT '',    -- the one-line error message
  subject     VARCHAR(512)    NOT NULL DEFAULT '',
  payload     MEDIUMBLOB      NULL,                   -- the message as received (<= 16 MiB)
  received_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (stream, seq),
  KEY idx_received_at (received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
