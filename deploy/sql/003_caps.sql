-- 003_caps: every column that stores a value capped in proto/include/ibp/types.h
-- holds a value at its cap (deploy/sql/README.md, "Limits writers must
-- respect"). The caps are bytes of UTF-8; a VARCHAR(n) of utf8mb4 holds n
-- characters, so VARCHAR(cap) holds every value up to the cap:
--   member and check names  IBP_NAME_MAX     255
--   endpoint URLs           IBP_URL_MAX      2048
--   domains                 IBP_DOMAIN_MAX   253 (already)
--   node ids                IBP_NODE_ID_MAX  64  (already)
--   Event ids               IBP_EVENT_ID_MAX 128 (already)
-- Error texts (TEXT, 65535 bytes) and JSON columns were wide enough already.
-- Re-runnable DDL (see 001): running a statement twice changes nothing.

-- member_events: the unique keys are on open_key (a hash) and event_id, and
-- idx_member_time takes 255 * 4 + 6 bytes, all within InnoDB's 3072-byte key
-- limit. open_key keeps its expression, so the open event of a key is found
-- as before.
ALTER TABLE member_events
  MODIFY check_name  VARCHAR(255)  NOT NULL DEFAULT '',
  MODIFY endpoint    VARCHAR(2048) NOT NULL DEFAULT '',
  MODIFY member_name VARCHAR(255)  NOT NULL DEFAULT '';

-- requests: with member_name at 255 characters the natural primary key
-- (date and the eight key columns) would take 3700 bytes, over InnoDB's 3072,
-- so the key columns are folded into row_key, the SHA-256 of their
-- length-prefixed values, and the primary key becomes (date, row_key).
-- MariaDB allows no primary key on a generated column (and triggers would
-- need SUPER where the binary log is on), so row_key is a plain column that
-- the writer computes (persist/hits.c) exactly as the UPDATE below does for
-- the rows written before 003:
--   UNHEX(SHA2(CONCAT(LENGTH(RTRIM(node_id)), ':', RTRIM(node_id), ...
--                     ':', is_ipv6), 256))
-- over node_id, domain_name, member_name, network_asn, network_name,
-- country_code, country_name in this order. The values are hashed without
-- trailing spaces (RTRIM) because the old key compared them so (utf8mb4_bin
-- is PAD SPACE): 'x' and 'x ' stay one key, and every other difference of
-- bytes stays two keys, as before. The upsert is unchanged but for the
-- column:
--   INSERT INTO requests (..., is_ipv6, row_key, hits) VALUES (...)
--   ON DUPLICATE KEY UPDATE hits = hits + VALUES(hits)
ALTER TABLE requests ADD COLUMN IF NOT EXISTS row_key BINARY(32) NULL AFTER is_ipv6;

UPDATE requests SET row_key = UNHEX(SHA2(CONCAT(
    LENGTH(RTRIM(node_id)), ':', RTRIM(node_id),
    LENGTH(RTRIM(domain_name)), ':', RTRIM(domain_name),
    LENGTH(RTRIM(member_name)), ':', RTRIM(member_name),
    LENGTH(RTRIM(network_asn)), ':', RTRIM(network_asn),
    LENGTH(RTRIM(network_name)), ':', RTRIM(network_name),
    LENGTH(RTRIM(country_code)), ':', RTRIM(country_code),
    LENGTH(RTRIM(country_name)), ':', RTRIM(country_name),
    ':', is_ipv6), 256))
  WHERE row_key IS NULL;

-- A writer that does not know row_key fails (NOT NULL, no default) instead of
-- writing a key that never matches.
ALTER TABLE requests
  MODIFY row_key     BINARY(32)   NOT NULL,
  MODIFY member_name VARCHAR(255) NOT NULL DEFAULT '',
  DROP PRIMARY KEY,
  ADD PRIMARY KEY (date, row_key);
