-- 0003: webhooks (SPEC §Hooks, §Storage).
--
-- A row is the hook's canonical JSON (serde_json of `domain::hook::Hook`, secret included: the
-- store is plaintext, SPEC §Security "At rest") keyed by its id. Timestamps are RFC 3339 UTC
-- with milliseconds.
CREATE TABLE hooks (
    id         TEXT NOT NULL PRIMARY KEY,
    json       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
