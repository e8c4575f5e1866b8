-- Managed tokens: bearer tokens for services, scripts and people without
-- SSO, granted and withdrawn through /v1/tokens without a restart. The
-- secret itself is never stored: only its SHA-256 digest (base64), by
-- which a presented token is looked up. The design is in docs/access.md.

CREATE TABLE managed_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- The principal name: the audit actor_id of what the token does. Unique
  -- among live tokens (checked under a lock when creating: expiry makes
  -- "live" a matter of time, which no index can say).
  name text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.@-]{1,100}$'),
  role text NOT NULL CHECK (role IN ('admin', 'service', 'auditor')),
  description text CHECK (length(description) <= 500),
  -- rt_ + the first 8 characters of the random part, so people can tell tokens apart.
  prefix text NOT NULL,
  token_digest text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  -- After a rotation: the successor, and when this token stops working.
  rotated_to uuid REFERENCES managed_tokens (id),
  grace_ends_at timestamptz,
  CHECK ((rotated_to IS NULL) = (grace_ends_at IS NULL))
);

-- Authentication: a presented token's digest -> its row (managedTokenFindByDigest).
CREATE UNIQUE INDEX managed_tokens_digest ON managed_tokens (token_digest);
-- GET /v1/tokens, newest first (managedTokenList).
CREATE INDEX managed_tokens_created ON managed_tokens (created_at DESC, id DESC);
-- The live-name check when creating (managedTokenLiveWithName).
CREATE INDEX managed_tokens_name ON managed_tokens (name) WHERE revoked_at IS NULL AND rotated_to IS NULL;
