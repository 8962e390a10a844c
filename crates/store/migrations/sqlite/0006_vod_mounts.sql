-- 0006: VOD mounts (SPEC §Domain "VOD mount", §Storage).
--
-- A row is the mount's canonical JSON (serde_json of `domain::vod::VodMount`) keyed by its
-- name. The files themselves live in the mount's storage directory, never in the database.
-- Timestamps are RFC 3339 UTC with milliseconds.
CREATE TABLE vod_mounts (
    name       TEXT NOT NULL PRIMARY KEY,
    json       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
