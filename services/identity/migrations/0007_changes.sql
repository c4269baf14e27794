-- The changes of a registration that other services carry out: a reopening (biometrics and
-- profile lift their seal or lock for the steps named), an erasure (every service erases the
-- person's data; then the account goes) and a release of a squatted identifier (every other
-- service erases the squatter's data; the account stays, blocked, as the record of the
-- release). Identity records the change first — this row, the audit log's entry and
-- the feed's event in one transaction — and then calls the owners with a token naming the
-- change; the owners refuse every other caller and record the change's id beside what they
-- did. `finished_at` is set when every owner has answered: a change left unfinished (an owner
-- was down) is visible in the audit log and the feed all the same, and is carried out again by
-- the next call for the account and by identity's retry task.
CREATE TABLE changes (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL,
    action      text NOT NULL CHECK (action IN ('reopen', 'erase', 'release')),
    steps       text[] NOT NULL DEFAULT '{}',
    actor       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX changes_account_idx ON changes (account_id);
CREATE INDEX changes_unfinished_idx ON changes (created_at) WHERE finished_at IS NULL;
