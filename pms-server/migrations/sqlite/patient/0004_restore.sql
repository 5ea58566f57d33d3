-- A soft-deleted patient can be restored (`POST /patients/{id}/restore`): its history records
-- the restore as a RESTORED version. SQLite cannot change a CHECK constraint in place: the
-- table is rebuilt with the same columns (the append-only triggers go with the old table and
-- are created again).
CREATE TABLE patient_versions_new (
    patient_id      BLOB    NOT NULL REFERENCES patients (id),
    version         INTEGER NOT NULL,
    change_type     TEXT    NOT NULL
                    CHECK (change_type IN ('CREATED', 'UPDATED', 'DELETED', 'RESTORED')),
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
INSERT INTO patient_versions_new
    SELECT patient_id, version, change_type, changed_at, changed_by, mrn, name, email, address,
           date_of_birth, registered_date, phone, sex, created_at, updated_at
    FROM patient_versions;
DROP TABLE patient_versions;
ALTER TABLE patient_versions_new RENAME TO patient_versions;
CREATE TRIGGER patient_versions_no_update BEFORE UPDATE ON patient_versions
BEGIN SELECT RAISE(ABORT, 'patient_versions is append-only'); END;
CREATE TRIGGER patient_versions_no_delete BEFORE DELETE ON patient_versions
BEGIN SELECT RAISE(ABORT, 'patient_versions is append-only'); END;
