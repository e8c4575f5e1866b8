-- What was stored can be read: an event's metadata nests at most 32 levels
-- (the object itself is level 1; AUDIT_METADATA_MAX_DEPTH in
-- src/schemas/audit.ts). Deeper JSON is stored by PostgreSQL without
-- complaint, but cannot be serialized back by the server (V8's
-- JSON.stringify overflows its stack at ~4,000 levels), so one such row
-- made every page of GET /v1/audit that contained it fail.
--
-- Events stored before this bound existed are repaired, not deleted: their
-- metadata moves, as text, to audit_quarantine, and the event keeps its id,
-- action, actor and times with metadata that says where the original went.
-- Then a CHECK constraint keeps every later write within the bound, whoever
-- writes it.

CREATE TABLE audit_quarantine (
  event_id bigint PRIMARY KEY REFERENCES audit_events (id),
  reason text NOT NULL,
  -- The original metadata, exactly as stored (jsonb's text form).
  metadata text NOT NULL,
  quarantined_at timestamptz NOT NULL DEFAULT now()
);

-- An object or array at path level 32 (the root is level 0) is the 33rd
-- level of nesting. `.**{32}` walks no deeper than that, whatever the value.
CREATE FUNCTION audit_metadata_too_deep(metadata jsonb) RETURNS boolean
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN jsonb_path_exists(metadata, 'strict $.**{32} ? (@.type() == "object" || @.type() == "array")');

INSERT INTO audit_quarantine (event_id, reason, metadata)
SELECT id, 'metadata nested deeper than 32 levels', metadata::text
  FROM audit_events
 WHERE audit_metadata_too_deep(metadata);

-- Audit rows are append-only (0004_audit.sql); this one repair is the
-- exception, made by the migration owner inside the migration transaction.
ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
UPDATE audit_events e
   SET metadata = jsonb_build_object(
         'quarantined', 'metadata nested deeper than 32 levels; the original is in audit_quarantine'
       ) || CASE WHEN jsonb_typeof(e.metadata -> 'principal') = 'string'
                 THEN jsonb_build_object('principal', e.metadata -> 'principal') ELSE '{}'::jsonb END
  FROM audit_quarantine q
 WHERE q.event_id = e.id;
ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;

ALTER TABLE audit_events ADD CONSTRAINT audit_events_metadata_depth CHECK (NOT audit_metadata_too_deep(metadata));
