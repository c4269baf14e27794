-- The system of record: who read whose account and what the support desk did to it, and the
-- change feed of registrations that the exam center's systems follow.

-- The audit log: every read of an account's personal data by a service (FindAccount,
-- ListAccounts, GetAccount with a service token; `kind` 'read', `note` the purpose the call
-- gave) and every support-desk action on it (`kind` the action, `note` the reason given), with
-- who did it (the service client) and when. Written in the transaction of the read or the
-- action; never updated or deleted by the service, and kept after an erasure, since it names
-- nobody but by the account id. One table, so that a person's log reads in one order.
CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    account_id uuid NOT NULL,
    actor      text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('read', 'block', 'unblock', 'unlock_login',
                                             'reopen', 'release_identifier', 'erase')),
    -- What was read ('account'), or what an action touched when it says more than the
    -- action (the steps reopened).
    what       text NOT NULL DEFAULT '',
    note       text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_account_idx ON audit_log (account_id, id);

-- The change feed (an outbox): one row per change of a registration, written in the
-- transaction of the change. Sequence numbers come from the single row of `feed_head`, which
-- each writer updates as its transaction's last statement: the row lock orders the writers, so
-- the numbers are gap-free and commit in order, and a reader that has seen N has seen
-- everything up to N. Rows carry no personal data: a follower reads the account it needs.
CREATE TABLE feed_head (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq      bigint NOT NULL
);
INSERT INTO feed_head VALUES (true, 0);

CREATE TABLE registration_events (
    seq         bigint PRIMARY KEY,
    account_id  uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN
                    ('created', 'completed', 'reopened', 'blocked', 'unblocked', 'erased',
                     'released')),
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registration_events_occurred_idx ON registration_events (occurred_at);

-- Each event is announced on the channel `registration_events` (its sequence number) at
-- commit, so the feed's streams wake at once on every replica.
CREATE FUNCTION announce_registration_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('registration_events', NEW.seq::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER registration_events_announce
    AFTER INSERT ON registration_events
    FOR EACH ROW EXECUTE FUNCTION announce_registration_event();

-- A released identifier: the squatting account keeps a record of what it held, and its login
-- becomes a value no login can match, so the real holder can register with it.
ALTER TABLE accounts ADD COLUMN released_login text;
