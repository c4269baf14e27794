-- Accounts, sessions and login throttling of the identity service.

CREATE TABLE accounts (
    id                  uuid PRIMARY KEY,
    citizenship         text NOT NULL CHECK (citizenship ~ '^[A-Z]{2}$'),
    -- What the applicant logs in with: the IIN, or the normalized passport number of a
    -- non-resident. One column with one unique index, so that a passport number that happens
    -- to look like an IIN can never make a login ambiguous.
    login               text NOT NULL,
    login_kind          text NOT NULL CHECK (login_kind IN ('iin', 'passport')),
    -- Stored normalized (lower case), so the unique index is case-insensitive by construction.
    email               text NOT NULL CHECK (email = lower(email)),
    password_hash       text NOT NULL,
    status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'registered', 'blocked')),
    terms_version       text NOT NULL,
    terms_accepted_at   timestamptz NOT NULL,
    terms_client_ip     text NOT NULL,
    terms_user_agent    text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    registered_at       timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now()
);
-- Uniqueness is decided here, not by a check before the insert.
CREATE UNIQUE INDEX accounts_login_key ON accounts (login);
CREATE UNIQUE INDEX accounts_email_key ON accounts (email);

-- Email proofs already used: a proof works once. Rows are useless after the proof expired.
CREATE TABLE consumed_proofs (
    jti         uuid PRIMARY KEY,
    consumed_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

-- A session is one refresh-token family: revoking it kills every token ever rotated from it.
CREATE TABLE sessions (
    id             uuid PRIMARY KEY,
    account_id     uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text,
    client_ip      text NOT NULL,
    user_agent     text NOT NULL
);
CREATE INDEX sessions_account_idx ON sessions (account_id) WHERE revoked_at IS NULL;

-- Refresh tokens are stored as SHA-256 hashes: they are 256-bit random, so a fast hash is
-- enough, and a database leak gives nothing usable.
CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    spent_at   timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Failed-login budgets, per login identifier and per client IP (keys are hashed). A row is
-- locked while an attempt reserves its slot, so parallel guesses cannot exceed the budget.
CREATE TABLE login_throttle (
    key               text PRIMARY KEY,
    failures          integer NOT NULL DEFAULT 0,
    window_started_at timestamptz NOT NULL DEFAULT now(),
    locked_until      timestamptz,
    lockouts          integer NOT NULL DEFAULT 0
);
