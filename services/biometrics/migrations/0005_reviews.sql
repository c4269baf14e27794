-- The review queue. A document check whose zone disagrees with the account, or whose reading
-- kept failing, opens a review; a person decides it with a reason: `approve` (the document is
-- the holder's), `retake` (ask for a new photo) or `reject` (the document is not the
-- holder's; the exam center follows up). A new photo of the document supersedes an open
-- review. The service never deletes a review: with its decision, who decided and when, it is
-- the record of every decision (kept after an erasure, like the access log).
CREATE TABLE document_reviews (
    id         bigserial PRIMARY KEY,
    account_id uuid NOT NULL,
    capture_id uuid NOT NULL,
    mismatches text[] NOT NULL DEFAULT '{}',
    opened_at  timestamptz NOT NULL DEFAULT now(),
    decision   text CHECK (decision IN ('approve', 'retake', 'reject', 'superseded')),
    reason     text,
    decided_by text,
    decided_at timestamptz
);
CREATE UNIQUE INDEX document_reviews_open_idx ON document_reviews (account_id) WHERE decision IS NULL;

-- The decision on the current photo's check, as the applicant's status shows it.
ALTER TABLE document_checks
    ADD COLUMN decision text CHECK (decision IN ('approve', 'retake', 'reject')),
    ADD COLUMN decision_reason text;
