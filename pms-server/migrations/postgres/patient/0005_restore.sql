-- A soft-deleted patient can be restored (`POST /patients/{id}/restore`): its history records
-- the restore as a RESTORED version.
ALTER TABLE patient_versions
    DROP CONSTRAINT patient_versions_change_type_check,
    ADD CONSTRAINT patient_versions_change_type_check
        CHECK (change_type IN ('CREATED', 'UPDATED', 'DELETED', 'RESTORED'));
