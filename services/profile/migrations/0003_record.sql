-- Reopening by the support desk: the steps of a locked profile to redo ('name', 'details',
-- 'education'). A write of a step on this list goes through despite the lock and takes the
-- step off; until then the profile lists the step as missing, so the registration cannot be
-- completed again before it is redone.
ALTER TABLE profiles ADD COLUMN redo text[] NOT NULL DEFAULT '{}';

-- Every read of a person's profile by a service (GetProfile with a service token): who (the
-- service client), when and why (the purpose the call gave). Never updated or deleted by the
-- service, and kept after an erasure, since it names nobody but by the account id.
CREATE TABLE access_log (
    id         bigserial PRIMARY KEY,
    account_id uuid NOT NULL,
    actor      text NOT NULL,
    purpose    text NOT NULL,
    read_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_log_account_idx ON access_log (account_id, id);

-- The statistics count completed registrations (locked profiles) by the day of completion.
CREATE INDEX profiles_locked_idx ON profiles (locked_at) WHERE locked_at IS NOT NULL;
