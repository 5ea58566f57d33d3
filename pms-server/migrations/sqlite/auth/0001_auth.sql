-- Auth service: users, refresh tokens, signing keys and the auth audit log.
-- Same shape as the PostgreSQL schema; UUIDs are 16-byte BLOBs, times RFC 3339 TEXT.

CREATE TABLE users (
    id            BLOB PRIMARY KEY NOT NULL,
    -- Stored lowercase by the service; the index makes uniqueness case-insensitive regardless.
    email         TEXT NOT NULL CHECK (length(email) <= 254),
    -- Argon2id PHC string.
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('ADMIN', 'CLINICIAN', 'BILLING', 'VIEWER')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Opaque refresh tokens, stored only as SHA-256. Rotation marks a token used and adds the next
-- one to the same family; presenting a used or revoked token revokes the whole family.
CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL CHECK (length(token_hash) = 32),
    family_id  BLOB NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id),
    issued_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    revoked_at TEXT
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- Ed25519 token signing keys. The newest generation signs; every stored key is published in the
-- JWKS. The primary key on `generation` makes first-start creation race-free across replicas.
CREATE TABLE signing_keys (
    generation INTEGER PRIMARY KEY NOT NULL,
    kid        TEXT NOT NULL UNIQUE,
    pkcs8      BLOB NOT NULL,
    public_key BLOB NOT NULL,
    created_at TEXT NOT NULL
);

-- Append-only: who did what to which account, from where. Never passwords, tokens or hashes.
CREATE TABLE auth_audit (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              BLOB NOT NULL UNIQUE,
    occurred_at     TEXT NOT NULL,
    actor_id        BLOB,
    actor_role      TEXT,
    action          TEXT NOT NULL,
    subject_user_id BLOB,
    outcome         TEXT NOT NULL,
    client_ip       TEXT,
    request_id      TEXT
);
CREATE INDEX auth_audit_subject_idx ON auth_audit (subject_user_id);

CREATE TRIGGER auth_audit_no_update BEFORE UPDATE ON auth_audit
BEGIN
    SELECT RAISE(ABORT, 'auth_audit is append-only');
END;
CREATE TRIGGER auth_audit_no_delete BEFORE DELETE ON auth_audit
BEGIN
    SELECT RAISE(ABORT, 'auth_audit is append-only');
END;
