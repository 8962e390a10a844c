-- 0005: templates (SPEC §Templates, §Storage).
--
-- A row is the template's canonical JSON (serde_json of `domain::template::Template`, stream
-- key included: the store is plaintext, SPEC §Security "At rest") keyed by its code.
-- Timestamps are RFC 3339 UTC with milliseconds.
CREATE TABLE templates (
    code       TEXT NOT NULL PRIMARY KEY,
    json       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
