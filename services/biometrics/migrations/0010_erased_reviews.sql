-- An erasure leaves each of the person's reviews as a tombstone: the id, the account id, the
-- times, the fields that disagreed and who decided, without the free-text reason (it may name
-- the person); a review still open is closed as 'erased', so it leaves the queue.
ALTER TABLE document_reviews DROP CONSTRAINT document_reviews_decision_check;
ALTER TABLE document_reviews ADD CONSTRAINT document_reviews_decision_check
    CHECK (decision IN ('approve', 'retake', 'reject', 'superseded', 'erased'));
