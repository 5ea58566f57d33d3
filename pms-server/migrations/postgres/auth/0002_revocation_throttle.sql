-- Revocation of access tokens before they expire, and failed-login throttling shared by replicas.

-- Bumped when the user is disabled or their role or password changes: access tokens carry the
-- epoch they were issued at, and lower epochs are refused.
ALTER TABLE users ADD COLUMN token_epoch BIGINT NOT NULL DEFAULT 0;

-- Active revocations, served to every verifier (GET /revocations). `user`: tokens of user
-- `subject` with an epoch below `epoch`; `session`: tokens whose `sid` is `subject`. Rows are
-- deleted once every token they can apply to has expired.
CREATE TABLE revocations (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('user', 'session')),
    subject    UUID NOT NULL,
    epoch      BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX revocations_created_idx ON revocations (created_at);
CREATE INDEX revocations_expires_idx ON revocations (expires_at);
CREATE INDEX revocations_subject_idx ON revocations (subject);

-- Failed logins per throttle key: SHA-256 of ("pair", account, address) or ("address", address),
-- never the email or address itself. Rows are deleted a window after their last failure.
CREATE TABLE login_throttle (
    key_hash        BYTEA PRIMARY KEY CHECK (length(key_hash) = 32),
    failures        INTEGER NOT NULL,
    last_failure_at TIMESTAMPTZ NOT NULL,
    blocked_until   TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_throttle_last_idx ON login_throttle (last_failure_at);
