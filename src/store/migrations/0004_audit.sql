-- Audit trail: ids that a forward-paging reader can never skip, server-set
-- created_at with a bounded skew against id order, append-only rows, and
-- the indexes GET /v1/audit uses. The argument for each piece is in
-- docs/audit.md ("Never skips" and "Time ranges").

-- Ids must be handed out in real-time order for the horizon argument: one
-- at a time from the shared sequence (no per-backend cache), and below
-- 2^56 so that an id fits under the advisory-lock tag below.
ALTER SEQUENCE audit_events_id_seq CACHE 1 MAXVALUE 72057594037927935;
-- The trigger assigns ids; a default would burn a second value per row.
ALTER TABLE audit_events ALTER COLUMN id DROP DEFAULT;

-- Before its first audit row, a transaction takes a shared advisory lock
-- (transaction-scoped: released only after its commit or rollback is
-- visible) keyed by the sequence's next value, then takes ids. So every
-- allocated id is at or above a key still locked for as long as its writer
-- runs. Lock keys are (0x41 << 56) | key: the top byte 'A' keeps them apart
-- from other advisory locks (the migration lock is a small number).
--
-- created_at is the clock read just before nextval, checked to be at most
-- 5 s before the clock read just after it. Hence, for any two rows, a lower
-- id never carries a created_at more than 5 s (+1 ms of truncation) later
-- than a higher id's: time filters can be turned into id bounds.
CREATE FUNCTION audit_events_assign() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  started timestamptz;
BEGIN
  IF current_setting('tenant_registry.audit_fenced', true) IS DISTINCT FROM 'on' THEN
    PERFORM pg_advisory_xact_lock_shared((65::bigint << 56) | (coalesce(pg_sequence_last_value('audit_events_id_seq'), 0) + 1));
    PERFORM set_config('tenant_registry.audit_fenced', 'on', true);
  END IF;
  started := clock_timestamp();
  NEW.id := nextval('audit_events_id_seq');
  IF clock_timestamp() - started > interval '5 seconds' THEN
    RAISE EXCEPTION 'audit id assignment stalled for more than 5 seconds'
      USING ERRCODE = 'TRA01', HINT = 'the database is overloaded; retry';
  END IF;
  NEW.created_at := date_trunc('milliseconds', started);
  NEW.occurred_at := coalesce(NEW.occurred_at, NEW.created_at);
  RETURN NEW;
END
$$;
CREATE TRIGGER audit_events_assign BEFORE INSERT ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_assign();

-- The exclusive upper bound of ids a reader may hand out: every id below it
-- is settled (committed and visible to any later statement, or never to
-- be). First the last allocated id, then the lowest key still locked; the
-- order matters, and the caller must read rows in a later statement.
CREATE FUNCTION audit_horizon() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  last_id bigint;
  oldest bigint;
BEGIN
  last_id := coalesce(pg_sequence_last_value('audit_events_id_seq'), 0);
  SELECT min(((l.classid::bigint - 1090519040) << 32) | l.objid::bigint) INTO oldest
    FROM pg_locks l
   WHERE l.locktype = 'advisory'
     AND l.objsubid = 1
     AND l.classid >= 1090519040::oid AND l.classid < 1107296256::oid
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database());
  RETURN least(last_id + 1, coalesce(oldest, last_id + 1));
END
$$;

-- Append-only: rows are never changed or removed, except that deleting a
-- tenant sets tenant_id to null (the foreign key's ON DELETE SET NULL).
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.tenant_id IS NULL
     AND (NEW.id, NEW.product, NEW.actor_id, NEW.action, NEW.target_type, NEW.target_id, NEW.metadata, NEW.occurred_at, NEW.created_at)
         IS NOT DISTINCT FROM
         (OLD.id, OLD.product, OLD.actor_id, OLD.action, OLD.target_type, OLD.target_id, OLD.metadata, OLD.occurred_at, OLD.created_at) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'TRA02';
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Indexes for GET /v1/audit (see auditList), chosen with EXPLAIN over 1M
-- rows (docs/audit.md). Every list is ascending by id, so each equality
-- filter gets (filter..., id): the page is a range scan that stops after
-- limit + 1 rows. Without them a filter that matches few rows walks the
-- primary key through most of the table.
-- ?since= / ?until=: turns a time range into id bounds (auditTimeBounds).
CREATE INDEX audit_events_created_idx ON audit_events (created_at);
-- ?tenant_id= (alone, and with since/until); also serves ON DELETE SET NULL.
CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, id) WHERE tenant_id IS NOT NULL;
-- ?product=
CREATE INDEX audit_events_product_idx ON audit_events (product, id) WHERE product IS NOT NULL;
-- ?actor_id=
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, id);
-- ?action=
CREATE INDEX audit_events_action_idx ON audit_events (action, id);
-- ?tenant_id=&action=
CREATE INDEX audit_events_tenant_action_idx ON audit_events (tenant_id, action, id) WHERE tenant_id IS NOT NULL;
-- ?tenant_id=&product=
CREATE INDEX audit_events_tenant_product_idx ON audit_events (tenant_id, product, id) WHERE tenant_id IS NOT NULL AND product IS NOT NULL;
-- ?tenant_id=&actor_id=
CREATE INDEX audit_events_tenant_actor_idx ON audit_events (tenant_id, actor_id, id) WHERE tenant_id IS NOT NULL;
