-- Sessions that ended while tokens of theirs may be unexpired: every verifier refuses those
-- tokens until `until`, when the last of them has expired anyway. Apart from `sessions`, so
-- that an erased account's revocations outlive its rows. Each new row is announced on the
-- channel `session_revocations` ("<session id> <until, Unix seconds>"), at commit.
CREATE TABLE session_revocations (
    session_id uuid PRIMARY KEY,
    until      timestamptz NOT NULL
);
CREATE INDEX session_revocations_until_idx ON session_revocations (until);

CREATE FUNCTION announce_session_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        'session_revocations',
        NEW.session_id::text || ' ' || ceil(extract(epoch FROM NEW.until))::bigint::text
    );
    RETURN NEW;
END
$$;

CREATE TRIGGER session_revocations_announce
    AFTER INSERT OR UPDATE ON session_revocations
    FOR EACH ROW EXECUTE FUNCTION announce_session_revocation();
