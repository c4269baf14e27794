-- What the retention deleted, rule by rule: one row per run that deleted something, with how
-- many and, for a rule that erases people, the SHA-256 of each account id — evidence of what
-- went and when that keeps none of it (read with RetentionService.ListRetentionRuns).
CREATE TABLE retention_runs (
    id       bigserial PRIMARY KEY,
    rule     text NOT NULL,
    ran_at   timestamptz NOT NULL DEFAULT now(),
    deleted  bigint NOT NULL,
    subjects text[] NOT NULL DEFAULT '{}'
);

-- The retention deletes the audit log's entries by age.
CREATE INDEX audit_log_at_idx ON audit_log (at);
