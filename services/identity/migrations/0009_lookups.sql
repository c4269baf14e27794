-- Every lookup by what identifies a person (FindAccount by IIN, passport number or email, and
-- the recovery's LookupRecovery) is recorded whether it found an account or not: a lookup that
-- found nobody has no account, and `subject` keeps the SHA-256 of the value looked up (as
-- normalized), so the officer can ask who looked up a given identifier without the log
-- naming anyone.
ALTER TABLE audit_log ALTER COLUMN account_id DROP NOT NULL;
ALTER TABLE audit_log ADD COLUMN subject text;
CREATE INDEX audit_log_subject_idx ON audit_log (subject, id) WHERE subject IS NOT NULL;
