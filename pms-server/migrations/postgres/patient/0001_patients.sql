-- Patients, their version history, the MRN counter and the patient audit log.

-- One row; `last` is the number of the latest MRN handed out. Incremented in the transaction that
-- creates the patient, so its row lock also serialises creations (and `seq` follows commit order).
CREATE TABLE mrn_counter (
    id   SMALLINT PRIMARY KEY CHECK (id = 1),
    last BIGINT   NOT NULL CHECK (last >= 0)
);
INSERT INTO mrn_counter (id, last) VALUES (1, 0);

CREATE TABLE patients (
    id              UUID        PRIMARY KEY,
    -- The MRN's number: creation order, the keyset for `sort=createdAt`.
    seq             BIGINT      NOT NULL UNIQUE,
    mrn             TEXT        NOT NULL UNIQUE,
    name            TEXT        NOT NULL,
    -- Lowercased, whitespace-collapsed name (computed by the server): sort and search key.
    -- Byte order ("C") so both backends sort alike and LIKE 'prefix%' can use the index.
    name_key        TEXT        COLLATE "C" NOT NULL,
    email           TEXT        NOT NULL,
    -- Lowercased email: case-insensitive uniqueness and search.
    email_key       TEXT        COLLATE "C" NOT NULL,
    address         TEXT        NOT NULL,
    date_of_birth   DATE        NOT NULL,
    registered_date DATE        NOT NULL,
    phone           TEXT,
    sex             TEXT        CHECK (sex IN ('FEMALE', 'MALE', 'OTHER', 'UNKNOWN')),
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    version         BIGINT      NOT NULL CHECK (version >= 1),
    deleted_at      TIMESTAMPTZ
);

-- A live patient's email is unique regardless of case; a deleted patient's email may be reused.
CREATE UNIQUE INDEX patients_email_key_live ON patients (email_key) WHERE deleted_at IS NULL;
CREATE INDEX patients_live_by_name ON patients (name_key, seq) WHERE deleted_at IS NULL;
CREATE INDEX patients_live_by_seq ON patients (seq) WHERE deleted_at IS NULL;

-- Every version of every patient, as it was after the change. Append-only.
CREATE TABLE patient_versions (
    patient_id      UUID        NOT NULL REFERENCES patients (id),
    version         BIGINT      NOT NULL,
    change_type     TEXT        NOT NULL CHECK (change_type IN ('CREATED', 'UPDATED', 'DELETED')),
    changed_at      TIMESTAMPTZ NOT NULL,
    changed_by      UUID,
    mrn             TEXT        NOT NULL,
    name            TEXT        NOT NULL,
    email           TEXT        NOT NULL,
    address         TEXT        NOT NULL,
    date_of_birth   DATE        NOT NULL,
    registered_date DATE        NOT NULL,
    phone           TEXT,
    sex             TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (patient_id, version)
);

-- Who did what to which patient, and how it ended. Never field values. Append-only.
CREATE TABLE patient_audit (
    seq         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          UUID        NOT NULL UNIQUE,
    occurred_at TIMESTAMPTZ NOT NULL,
    actor_id    UUID,
    actor_role  TEXT,
    action      TEXT        NOT NULL,
    resource    TEXT        NOT NULL,
    patient_id  UUID,
    outcome     TEXT        NOT NULL,
    client_ip   TEXT,
    request_id  TEXT
);
CREATE INDEX patient_audit_by_patient ON patient_audit (patient_id, seq);

-- History and audit are append-only, for the application and for anyone with its credentials.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER patient_versions_append_only BEFORE UPDATE OR DELETE ON patient_versions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER patient_audit_append_only BEFORE UPDATE OR DELETE ON patient_audit
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
