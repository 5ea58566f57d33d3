-- New patients' numbers come from a sequence instead of the `mrn_counter` row: the row's lock,
-- held from the increment to the commit, queued every concurrent create behind the one before it
-- (fsync included), which capped creates far below what the database commits. Numbers stay unique
-- and increase in the order they are handed out; one is skipped only when a create fails after
-- taking it (a duplicate email is checked before taking one).
CREATE SEQUENCE patient_mrn_seq AS BIGINT MINVALUE 1;
SELECT setval('patient_mrn_seq', GREATEST(last, 1), last > 0) FROM mrn_counter WHERE id = 1;
DROP TABLE mrn_counter;
