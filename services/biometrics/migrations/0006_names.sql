-- The profile's names as a zone would print them (ICAO transliteration, `SURNAME<<GIVEN`) and
-- whether the zone's names agree, recorded when the applicant asks to complete: a signal for
-- the person who reviews the document, never a reason to hold it. Cleared with the rest of the
-- check when a new photo is read.
ALTER TABLE document_checks
    ADD COLUMN claimed_names text,
    ADD COLUMN names_agree boolean;
