-- The whole schema of the contract: tenants, the product catalog,
-- entitlements, API keys and audit events.

CREATE TABLE tenants (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug               text NOT NULL CONSTRAINT tenants_slug_key UNIQUE,
  name               text NOT NULL,
  plan               text NOT NULL DEFAULT 'starter' CHECK (plan IN ('starter', 'growth', 'enterprise')),
  kind               text NOT NULL DEFAULT 'customer' CHECK (kind IN ('customer', 'internal', 'partner', 'demo')),
  status             text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'cancelled')),
  sales_owner        text,
  erp_customer_id    text,
  stripe_customer_id text,
  trial_ends_at      timestamptz,
  contract_start     timestamptz,
  contract_end       timestamptz,
  -- Millisecond precision: the API shows milliseconds, and the list cursor
  -- carries created_at, so stored and shown values must be equal.
  created_at         timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  updated_at         timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  CONSTRAINT tenants_contract_range CHECK (contract_end IS NULL OR contract_start IS NULL OR contract_end >= contract_start)
);
-- GET /v1/tenants: newest first, keyset on (created_at, id).
CREATE INDEX tenants_created_idx ON tenants (created_at DESC, id DESC);
-- GET /v1/tenants?status=: the filter most used by support (pending tenants).
CREATE INDEX tenants_status_created_idx ON tenants (status, created_at DESC, id DESC);

CREATE TABLE products (
  key         text PRIMARY KEY,
  name        text NOT NULL,
  description text NOT NULL DEFAULT '',
  trial_days  integer CHECK (trial_days IS NULL OR trial_days > 0),
  -- Set when the product leaves the catalog file; never deleted, since
  -- entitlements, keys and audit events keep pointing at it.
  retired_at  timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE entitlements (
  tenant_id        uuid NOT NULL CONSTRAINT entitlements_tenant_id_fkey REFERENCES tenants (id) ON DELETE CASCADE,
  product          text NOT NULL CONSTRAINT entitlements_product_fkey REFERENCES products (key),
  status           text NOT NULL CHECK (status IN ('requested', 'trial', 'active', 'cancelled', 'expired')),
  trial_ends_at    timestamptz,
  -- Set once, never cleared: a tenant gets at most one trial per product.
  trial_started_at timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, product)
);
-- The expiry sweep: trials whose end has passed.
CREATE INDEX entitlements_trial_end_idx ON entitlements (trial_ends_at) WHERE status = 'trial';

CREATE TABLE api_keys (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id    uuid NOT NULL CONSTRAINT api_keys_tenant_id_fkey REFERENCES tenants (id) ON DELETE CASCADE,
  product      text CONSTRAINT api_keys_product_fkey REFERENCES products (key),
  name         text NOT NULL,
  scopes       text[] NOT NULL DEFAULT '{}',
  -- Verify looks a presented key up by its prefix (unique index).
  prefix       text NOT NULL CONSTRAINT api_keys_prefix_key UNIQUE,
  hash         text NOT NULL,
  created_by   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  last_used_at timestamptz,
  revoked_at   timestamptz
);
-- GET /v1/api-keys?tenant_id=: newest first.
CREATE INDEX api_keys_tenant_created_idx ON api_keys (tenant_id, created_at DESC, id DESC);

CREATE SEQUENCE audit_events_id_seq AS bigint;
CREATE TABLE audit_events (
  id          bigint PRIMARY KEY DEFAULT nextval('audit_events_id_seq'),
  -- Audit rows outlive their tenant.
  tenant_id   uuid CONSTRAINT audit_events_tenant_id_fkey REFERENCES tenants (id) ON DELETE SET NULL,
  product     text CONSTRAINT audit_events_product_fkey REFERENCES products (key),
  actor_id    text NOT NULL,
  action      text NOT NULL,
  target_type text,
  target_id   text,
  metadata    jsonb NOT NULL DEFAULT '{}',
  occurred_at timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE audit_events_id_seq OWNED BY audit_events.id;
