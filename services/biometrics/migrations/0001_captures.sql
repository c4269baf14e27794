-- Capture records, consents and the access audit log of the biometrics service.

-- One row per stored photo. Only current captures are kept: a retake replaces the row in the
-- same transaction that makes the new one current, and the old object is deleted after
-- (objects no row references are swept).
CREATE TABLE captures (
    id            uuid PRIMARY KEY,
    account_id    uuid NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('face', 'document_front', 'document_back')),
    -- A random id under the bucket prefix: no personal data in object keys.
    object_key    text NOT NULL UNIQUE,
    master_key_id text NOT NULL,
    -- SHA-256 of the plaintext (the re-encoded JPEG), to prove what was stored.
    sha256        bytea NOT NULL,
    size_bytes    integer NOT NULL,
    width         integer NOT NULL,
    height        integer NOT NULL,
    scores        jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, kind)
);

-- Consent to processing biometric data, separate from the terms of use (the law asks for it).
CREATE TABLE consents (
    account_id  uuid PRIMARY KEY,
    version     text NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now(),
    client_ip   text NOT NULL,
    user_agent  text NOT NULL
);

-- Which document the applicant photographs (it decides whether the back is needed) and
-- whether the set is submitted.
CREATE TABLE capture_sets (
    account_id    uuid PRIMARY KEY,
    document_type text NOT NULL DEFAULT 'id_card' CHECK (document_type IN ('id_card', 'passport')),
    submitted_at  timestamptz
);

-- Every read of an image: who, what, when and why. Never updated or deleted by the service.
CREATE TABLE access_log (
    id         bigserial PRIMARY KEY,
    capture_id uuid NOT NULL,
    account_id uuid NOT NULL,
    actor      text NOT NULL,
    purpose    text NOT NULL,
    read_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_log_account_idx ON access_log (account_id);
