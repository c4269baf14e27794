-- What was accepted, not only its version: the SHA-256 of the published text shown and its
-- language. Accounts made before this migration keep NULL (their text is known by version).
ALTER TABLE accounts
    ADD COLUMN terms_sha256 text CHECK (terms_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN terms_language text CHECK (terms_language IN ('kk', 'ru', 'en'));
