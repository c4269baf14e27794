-- The changes of a registration identity recorded and profile carried out (a reopening of
-- steps, an erasure), by identity's id of the change: with identity's audit log they show who
-- changed a locked profile and why. Written in the transaction of the change; kept after an
-- erasure, since it names nobody but by the account id.
CREATE TABLE changes (
    id         uuid PRIMARY KEY,
    account_id uuid NOT NULL,
    action     text NOT NULL CHECK (action IN ('reopen', 'erase')),
    steps      text[] NOT NULL DEFAULT '{}',
    actor      text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_account_idx ON changes (account_id);
