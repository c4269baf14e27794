-- What the retention deleted, rule by rule: one row per run that deleted something, with how
-- many (read with RetentionService.ListRetentionRuns).
CREATE TABLE retention_runs (
    id       bigserial PRIMARY KEY,
    rule     text NOT NULL,
    ran_at   timestamptz NOT NULL DEFAULT now(),
    deleted  bigint NOT NULL,
    subjects text[] NOT NULL DEFAULT '{}'
);

-- The retention deletes by age: the access log's entries, and reviews once decided.
CREATE INDEX access_log_read_at_idx ON access_log (read_at);
CREATE INDEX document_reviews_decided_idx ON document_reviews (decided_at) WHERE decided_at IS NOT NULL;
