-- What was consented to, not only its version: the SHA-256 of the published text shown and its
-- language. Consents given before this migration keep NULL (their text is known by version).
ALTER TABLE consents
    ADD COLUMN sha256 text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN language text CHECK (language IN ('kk', 'ru', 'en'));
