-- Patients, their version history, the MRN counter and the patient audit log.
-- Same shape as the PostgreSQL schema; UUIDs are BLOBs, dates and times TEXT (sqlx's encodings).

-- One row; `last` is the number of the latest MRN handed out. Incremented in the (BEGIN IMMEDIATE)
-- transaction that creates the patient.
CREATE TABLE mrn_counter (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL CHECK (last >= 0)
);
INSERT INTO mrn_counter (id, last) VALUES (1, 0);

CREATE TABLE patients (
    id              BLOB    PRIMARY KEY NOT NULL,
    -- The MRN's number: creation order, the keyset for `sort=createdAt`.
    seq             INTEGER NOT NULL UNIQUE,
    mrn             TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    -- Lowercased, whitespace-collapsed name (computed by the server): sort and search key.
    name_key        TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    -- Lowercased email: case-insensitive uniqueness and search.
    email_key       TEXT    NOT NULL,
    address         TEXT    NOT NULL,
    date_of_birth   TEXT    NOT NULL,
    registered_date TEXT    NOT NULL,
    phone           TEXT,
    sex             TEXT    CHECK (sex IN ('FEMALE', 'MALE', 'OTHER', 'UNKNOWN')),
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    version         INTEGER NOT NULL CHECK (version >= 1),
    deleted_at      TEXT
);

-- A live patient's email is unique regardless of case; a deleted patient's email may be reused.
CREATE UNIQUE INDEX patients_email_key_live ON patients (email_key) WHERE deleted_at IS NULL;
CREATE INDEX patients_live_by_name ON patients (name_key, seq) WHERE deleted_at IS NULL;
CREATE INDEX patients_live_by_seq ON patients (seq) WHERE deleted_at IS NULL;

-- Every version of every patient, as it was after the change. Append-only.
CREATE TABLE patient_versions (
    patient_id      BLOB    NOT NULL REFERENCES patients (id),
    version         INTEGER NOT NULL,
    change_type     TEXT    NOT NULL CHECK (change_type IN ('CREATED', 'UPDATED', 'DELETED')),
    changed_at      TEXT    NOT NULL,
    changed_by      BLOB,
    mrn             TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    address         TEXT    NOT NULL,
    date_of_birth   TEXT    NOT NULL,
    registered_date TEXT    NOT NULL,
    phone           TEXT,
    sex             TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    PRIMARY KEY (patient_id, version)
);

-- Who did what to which patient, and how it ended. Never field values. Append-only.
CREATE TABLE patient_audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          BLOB    NOT NULL UNIQUE,
    occurred_at TEXT    NOT NULL,
    actor_id    BLOB,
    actor_role  TEXT,
    action      TEXT    NOT NULL,
    resource    TEXT    NOT NULL,
    patient_id  BLOB,
    outcome     TEXT    NOT NULL,
    client_ip   TEXT,
    request_id  TEXT
);
CREATE INDEX patient_audit_by_patient ON patient_audit (patient_id, seq);

-- History and audit are append-only.
CREATE TRIGGER patient_versions_no_update BEFORE UPDATE ON patient_versions
BEGIN SELECT RAISE(ABORT, 'patient_versions is append-only'); END;
CREATE TRIGGER patient_versions_no_delete BEFORE DELETE ON patient_versions
BEGIN SELECT RAISE(ABORT, 'patient_versions is append-only'); END;
CREATE TRIGGER patient_audit_no_update BEFORE UPDATE ON patient_audit
BEGIN SELECT RAISE(ABORT, 'patient_audit is append-only'); END;
CREATE TRIGGER patient_audit_no_delete BEFORE DELETE ON patient_audit
BEGIN SELECT RAISE(ABORT, 'patient_audit is append-only'); END;
