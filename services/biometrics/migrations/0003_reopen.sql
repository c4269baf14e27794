-- Reopening by the support desk: the steps of a sealed set to redo ('face', 'document_front',
-- 'document_back', 'consent'). A write of a step on this list goes through despite the seal
-- (checked under the set's lock, like the seal) and takes the step off; until then the set
-- lists the step as missing, so it cannot be sealed again before it is redone.
ALTER TABLE capture_sets ADD COLUMN redo text[] NOT NULL DEFAULT '{}';

-- Services' reads of a person's capture status and consent are logged beside the image
-- downloads: they name no capture, and `what` says what was read ('image' or 'status').
ALTER TABLE access_log ALTER COLUMN capture_id DROP NOT NULL;
ALTER TABLE access_log ADD COLUMN what text NOT NULL DEFAULT 'image';
CREATE INDEX access_log_account_id_idx ON access_log (account_id, id);
