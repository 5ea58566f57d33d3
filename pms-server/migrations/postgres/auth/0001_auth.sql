-- Auth service: users, refresh tokens, signing keys and the auth audit log.

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    -- Stored lowercase by the service; the index makes uniqueness case-insensitive regardless.
    email         TEXT NOT NULL CHECK (length(email) <= 254),
    -- Argon2id PHC string.
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('ADMIN', 'CLINICIAN', 'BILLING', 'VIEWER')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Opaque refresh tokens, stored only as SHA-256. Rotation marks a token used and adds the next
-- one to the same family; presenting a used or revoked token revokes the whole family.
CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY CHECK (length(token_hash) = 32),
    family_id  UUID NOT NULL,
    user_id    UUID NOT NULL REFERENCES users (id),
    issued_at  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- Ed25519 token signing keys. The newest generation signs; every stored key is published in the
-- JWKS. The primary key on `generation` makes first-start creation race-free across replicas.
CREATE TABLE signing_keys (
    generation BIGINT PRIMARY KEY,
    kid        TEXT NOT NULL UNIQUE,
    pkcs8      BYTEA NOT NULL,
    public_key BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- Append-only: who did what to which account, from where. Never passwords, tokens or hashes.
CREATE TABLE auth_audit (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              UUID NOT NULL UNIQUE,
    occurred_at     TIMESTAMPTZ NOT NULL,
    actor_id        UUID,
    actor_role      TEXT,
    action          TEXT NOT NULL,
    subject_user_id UUID,
    outcome         TEXT NOT NULL,
    client_ip       TEXT,
    request_id      TEXT
);
CREATE INDEX auth_audit_subject_idx ON auth_audit (subject_user_id);

CREATE FUNCTION auth_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'auth_audit is append-only';
END
$$;
CREATE TRIGGER auth_audit_append_only BEFORE UPDATE OR DELETE ON auth_audit
    FOR EACH STATEMENT EXECUTE FUNCTION auth_audit_append_only();
