-- Completion seals the capture set: once `sealed_at` is set, no upload, retake, document switch
-- or consent changes it, whatever the caller checked before. Every write takes this row's
-- lock and checks the seal in the transaction that would record it, so an upload still
-- arriving when the applicant completes is refused, never recorded after. Only a staff
-- reopening lifts the seal.
ALTER TABLE capture_sets ADD COLUMN sealed_at timestamptz;

-- Erasure leaves this row as a tombstone (the account id and when; nothing else), so a request
-- still in flight, or a token that has not expired yet, cannot create the person again.
ALTER TABLE capture_sets ADD COLUMN erased_at timestamptz;
