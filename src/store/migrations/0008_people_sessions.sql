-- People who sign in through the identity provider (OIDC), their console
-- sessions, and the short-lived state of sign-ins in progress. The design
-- is in docs/access.md ("People and single sign-on").

CREATE TABLE people (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Who the identity provider says this is: its issuer and the ID token's sub.
  issuer text NOT NULL,
  subject text NOT NULL,
  email text,
  name text,
  -- Taken afresh from the role claim at each sign-in; a person is never service.
  role text NOT NULL CHECK (role IN ('admin', 'auditor')),
  disabled_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  last_seen_at timestamptz,
  UNIQUE (issuer, subject)
);

CREATE TABLE sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  person_id uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
  -- SHA-256 of the cookie's secret (base64url); the secret itself is never stored.
  secret_hash text NOT NULL UNIQUE,
  started_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  -- Written at most every few seconds per instance (coalesced), not per request.
  last_seen_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  -- The absolute end (SESSION_MAX_HOURS after the start); the idle end is last_seen_at + SESSION_IDLE_MINUTES.
  expires_at timestamptz NOT NULL,
  ended_at timestamptz
);
-- GET /v1/sessions and ending a person's sessions on disable (sessionListLive, sessionsEndForPerson).
CREATE INDEX sessions_live_idx ON sessions (person_id) WHERE ended_at IS NULL;

-- A sign-in between /v1/auth/login and /v1/auth/callback: kept in the store
-- so that any instance can finish it, and taken (deleted) once.
CREATE TABLE login_states (
  -- SHA-256 of the OAuth state parameter (base64url).
  state_hash text PRIMARY KEY,
  nonce text NOT NULL,
  code_verifier text NOT NULL,
  return_to text NOT NULL,
  expires_at timestamptz NOT NULL
);
-- Pruning expired sign-ins (loginStatePrune).
CREATE INDEX login_states_expires_idx ON login_states (expires_at);
