-- Background work once per cluster (examreg_kit::lease): a job's row says when it last ran;
-- the replica that moves `ran_at` to now, once the period has passed, runs the job and the
-- others skip.
CREATE TABLE leases (
    name   text PRIMARY KEY,
    ran_at timestamptz NOT NULL,
    holder text NOT NULL,
    runs   bigint NOT NULL DEFAULT 1
);
