-- Erasure empties a profile and leaves the row as a tombstone (the account id and when), so a
-- write still in flight, or made with a token that has not expired yet, cannot create the
-- person again: every write is one statement whose conflict arm skips an erased row, and the
-- row lock makes a write racing the erasure wait for it and then see the tombstone.
ALTER TABLE profiles ADD COLUMN erased_at timestamptz;
ALTER TABLE profiles ADD CONSTRAINT profiles_erased_is_empty CHECK (
    erased_at IS NULL OR (surname IS NULL AND given_name IS NULL AND patronymic IS NULL
        AND sex IS NULL AND birth_date IS NULL AND region_code IS NULL AND mobile_phone IS NULL
        AND contingent_code IS NULL AND institution_id IS NULL AND locked_at IS NULL)
);
