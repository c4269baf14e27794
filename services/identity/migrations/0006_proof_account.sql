-- The account a registration proof made, so that the same registration sent again (its answer
-- was lost when a connection broke) finds its account instead of a spent proof. Expand only:
-- NULL for proofs spent before, or spent on an identifier or email already registered.
ALTER TABLE consumed_proofs ADD COLUMN account_id uuid;
