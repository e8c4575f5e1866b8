-- Webhooks: endpoints, their deliveries, and the dispatch cursor that turns
-- the audit log into an outbox. The design is in docs/webhooks.md.

CREATE TABLE webhook_endpoints (
  id uuid PRIMARY KEY,
  url text NOT NULL CHECK (length(url) <= 2000),
  events text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 50),
  description text,
  enabled boolean NOT NULL DEFAULT true,
  -- HMAC keys (whsec_...), kept so the registry can sign; the previous one
  -- signs alongside the current one until it expires (rotation overlap).
  secret text NOT NULL,
  previous_secret text,
  previous_secret_expires_at timestamptz,
  -- The id of this endpoint's webhook.created event: it receives events
  -- with higher ids only (those committed after it was created).
  after_event_id bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  -- The audit event delivered; null for webhook.test messages.
  event_id bigint,
  -- Standard Webhooks webhook-id: msg_<event id>, or msg_test_<uuid>.
  message_id text NOT NULL,
  event_type text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
  attempts integer NOT NULL DEFAULT 0,
  last_status_code integer,
  last_error text,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- While leased, one instance is attempting it (or about to); an expired
  -- lease means that instance is gone and anyone may take it over.
  lease_until timestamptz,
  lease_token uuid,
  -- Milliseconds, as shown: the list's keyset cursor carries the shown value.
  created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  delivered_at timestamptz
);
-- One delivery per endpoint and event, whoever fans out (and however often).
CREATE UNIQUE INDEX webhook_deliveries_event_idx ON webhook_deliveries (endpoint_id, event_id) WHERE event_id IS NOT NULL;
-- The worker's claim: due deliveries of one endpoint, oldest first (webhookClaim).
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status IN ('pending', 'failed');
-- GET /v1/webhooks/{id}/deliveries, newest first (webhookDeliveryList).
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
-- Pruning after the retention period (webhookDeliveriesPrune).
CREATE INDEX webhook_deliveries_created_idx ON webhook_deliveries (created_at);

-- How far the audit log has been fanned out into deliveries. One row; the
-- instance that holds its row lock fans out, the others skip it.
CREATE TABLE webhook_dispatch (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  after_event_id bigint NOT NULL
);
INSERT INTO webhook_dispatch (after_event_id) VALUES (coalesce(pg_sequence_last_value('audit_events_id_seq'), 0));

-- An endpoint's patterns: an exact action, a prefix wildcard (entitlement.*) or *.
CREATE FUNCTION webhook_matches(patterns text[], action text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT EXISTS (
    SELECT 1 FROM unnest(patterns) AS p
     WHERE p = '*' OR p = action OR (right(p, 2) = '.*' AND starts_with(action, left(p, -1)))
  )
$$;

-- Wake-ups: whoever appends audit events announces it when (and only if)
-- the transaction commits, so the dispatcher and the audit streams need
-- not poll fast. One notification per transaction (PostgreSQL folds
-- identical ones).
CREATE FUNCTION audit_events_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('tenant_registry_audit', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER audit_events_announce AFTER INSERT ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_announce();
