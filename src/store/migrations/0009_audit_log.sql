-- The verifiable audit log (docs/audit-log.md): an RFC 6962 Merkle tree over
-- the audit events in log order, and the signed checkpoints of its sizes.
-- Every table here is append-only, like audit_events: the triggers below
-- refuse UPDATE, DELETE and TRUNCATE from anyone who does not own the
-- tables, and `migrate --grant` takes those rights from the server's role.

-- The store's identity: the id in the default origin
-- (tenant-registry/<store_id>), made once, here.
CREATE TABLE audit_log_store (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  store_id text NOT NULL CHECK (store_id ~ '^[0-9a-f]{32}$')
);
INSERT INTO audit_log_store (store_id) VALUES (replace(gen_random_uuid()::text, '-', ''));

-- The signer key generated on first start when AUDIT_LOG_KEY_FILE is not
-- set, in the note format (PRIVATE+KEY+<name>+<id>+<base64>). One row, ever.
CREATE TABLE audit_log_signer (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  signer_key text NOT NULL CHECK (signer_key LIKE 'PRIVATE+KEY+%'),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- The leaves in log order, in segments that never cross a boundary of 256
-- entries: log_index start_index + i is the event whose id is the i-th
-- 8-byte big-endian integer of event_ids, and its leaf hash is the i-th 32
-- bytes of hashes. Ids ascend with the index (the sequencer takes only
-- events below the audit horizon, in id order), so last_id finds the
-- segment of an event. About 41 bytes per event (docs/audit-log.md).
CREATE TABLE audit_log_leaves (
  start_index bigint PRIMARY KEY CHECK (start_index >= 0),
  end_index bigint NOT NULL,
  last_id bigint NOT NULL,
  event_ids bytea NOT NULL,
  hashes bytea NOT NULL,
  CHECK (end_index > start_index AND end_index - start_index <= 256 AND start_index / 256 = (end_index - 1) / 256),
  CHECK (octet_length(event_ids) = 8 * (end_index - start_index)),
  CHECK (octet_length(hashes) = 32 * (end_index - start_index))
);
-- Hashes do not compress; EXTERNAL lets substring() read only the chunks it needs.
ALTER TABLE audit_log_leaves ALTER COLUMN hashes SET STORAGE EXTERNAL;
ALTER TABLE audit_log_leaves ALTER COLUMN event_ids SET STORAGE EXTERNAL;
-- log_index of listed events (auditLogIndexes): the segments whose last_id
-- is at or above a page's lowest id, up to the one holding its highest.
CREATE INDEX audit_log_leaves_last_id_idx ON audit_log_leaves (last_id);

-- Hashes of complete subtrees of 256 leaves and more (level 8 = 256 leaves,
-- level 9 = 512, ...), written once when complete. Anything smaller is
-- computed from at most 256 leaf hashes, so a proof reads a logarithmic
-- number of rows and never recomputes the tree.
CREATE TABLE audit_log_nodes (
  level smallint NOT NULL CHECK (level >= 8 AND level < 63),
  idx bigint NOT NULL CHECK (idx >= 0),
  hash bytea NOT NULL CHECK (octet_length(hash) = 32),
  PRIMARY KEY (level, idx)
);

-- Every signed checkpoint, one per tree size (sizes only grow).
CREATE TABLE audit_log_checkpoints (
  size bigint PRIMARY KEY CHECK (size >= 1),
  root bytea NOT NULL CHECK (octet_length(root) = 32),
  note text NOT NULL,
  signed_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only (%)', TG_TABLE_NAME USING ERRCODE = 'TRA02';
END
$$;
CREATE TRIGGER audit_log_store_append_only BEFORE UPDATE OR DELETE ON audit_log_store
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_store_no_truncate BEFORE TRUNCATE ON audit_log_store
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_signer_append_only BEFORE UPDATE OR DELETE ON audit_log_signer
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_signer_no_truncate BEFORE TRUNCATE ON audit_log_signer
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_leaves_append_only BEFORE UPDATE OR DELETE ON audit_log_leaves
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_leaves_no_truncate BEFORE TRUNCATE ON audit_log_leaves
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_nodes_append_only BEFORE UPDATE OR DELETE ON audit_log_nodes
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_nodes_no_truncate BEFORE TRUNCATE ON audit_log_nodes
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_log_checkpoints
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_checkpoints_no_truncate BEFORE TRUNCATE ON audit_log_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
