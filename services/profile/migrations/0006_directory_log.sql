-- Every change of the directories by an operator (AddInstitution, RenameInstitution,
-- ArchiveInstitution, ImportInstitutions), in the transaction of the change: who (the client,
-- and the person it acted for), what, which institution (none for an import) and what else
-- says it (an import's counts).
CREATE TABLE directory_log (
    id             bigserial PRIMARY KEY,
    actor          text NOT NULL,
    action         text NOT NULL CHECK (action IN ('add', 'rename', 'archive', 'import')),
    institution_id text,
    detail         text NOT NULL DEFAULT '',
    at             timestamptz NOT NULL DEFAULT now()
);
