-- Deleted keys move out of `documents` into their own table: the engine
-- deletes a marker under `active/` each time a promotion ends, and listing
-- the active ones must not walk past every marker ever deleted (the working
-- set does not grow with history). A deleted key keeps its version here, so
-- re-creating it continues the numbering.
CREATE TABLE tombstones (
    key     TEXT COLLATE "C" PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO tombstones (key, version) SELECT key, version FROM documents WHERE value IS NULL;
DELETE FROM documents WHERE value IS NULL;
