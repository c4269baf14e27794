-- Reading the machine-readable zone of the document photo that bears one (an ID card's back:
-- TD1; a passport's data page: TD3), off the upload's path: a queue in Postgres, one row per
-- account naming the capture it reads. Storing a zone-bearing photo (a first shot or a retake)
-- puts the row back to 'pending' in the same transaction; a worker claims it with SKIP LOCKED
-- and a lease (`not_before` pushed ahead), so a worker that dies leaves it to another after
-- the lease. States: 'pending'; 'read' (`zone` holds the parsed fields); 'unreadable' (the zone
-- was not found or not read: the applicant retakes); 'failed' (the reading itself kept
-- failing: a person looks). The row goes with its capture (a retake that makes a document
-- without a zone current deletes it; so does an erasure).
CREATE TABLE document_checks (
    account_id uuid PRIMARY KEY,
    capture_id uuid NOT NULL UNIQUE REFERENCES captures (id) ON DELETE CASCADE ON UPDATE CASCADE,
    format     text NOT NULL CHECK (format IN ('td1', 'td3')),
    state      text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'read', 'unreadable', 'failed')),
    attempts   integer NOT NULL DEFAULT 0,
    not_before timestamptz NOT NULL DEFAULT now(),
    zone       jsonb,
    -- Who the account says the holder is (stated with the upload), and what the zone says of
    -- it once read: 'verified', 'expired' or 'review' with the `mismatches`.
    expected_iin             text,
    expected_passport_number text,
    expected_citizenship     text,
    outcome    text CHECK (outcome IN ('verified', 'expired', 'review')),
    mismatches text[] NOT NULL DEFAULT '{}',
    -- Why it was not read (a stable code, no personal data).
    error      text,
    -- CPU time of the reading, for the benchmark and the metrics.
    read_ms    integer,
    queued_at  timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz
);
CREATE INDEX document_checks_pending_idx ON document_checks (not_before) WHERE state = 'pending';
