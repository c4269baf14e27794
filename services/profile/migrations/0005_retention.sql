-- What the retention deleted, rule by rule: one row per run that deleted something, with how
-- many (read with RetentionService.ListRetentionRuns).
CREATE TABLE retention_runs (
    id       bigserial PRIMARY KEY,
    rule     text NOT NULL,
    ran_at   timestamptz NOT NULL DEFAULT now(),
    deleted  bigint NOT NULL,
    subjects text[] NOT NULL DEFAULT '{}'
);

-- The retention deletes the access log's entries by age.
CREATE INDEX access_log_read_at_idx ON access_log (read_at);

-- The once-per-cluster sweep (the retention's rules) takes this lease, as the other services'
-- sweeps do: one row per job, the last run's time and who ran it.
CREATE TABLE leases (
    name   text PRIMARY KEY,
    ran_at timestamptz NOT NULL,
    holder text NOT NULL,
    runs   bigint NOT NULL DEFAULT 1
);
