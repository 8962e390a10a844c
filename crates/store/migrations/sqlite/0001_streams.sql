-- 0001: stream definitions (SPEC §Domain "Stream", ARCHITECTURE.md §5 "store").
--
-- A row is the stream's canonical JSON (serde_json of `domain::Stream`, stored as given, not
-- template-resolved) plus the columns the server filters and compares on. `revision` starts at 1
-- and grows by 1 per write; it is the compare-and-swap token behind the API's ETag/If-Match.
-- Timestamps are RFC 3339 text in UTC with milliseconds (`2025-01-31T12:00:00.123Z`).
CREATE TABLE streams (
    code       TEXT    NOT NULL PRIMARY KEY,
    json       TEXT    NOT NULL,
    disabled   INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    revision   INTEGER NOT NULL CHECK (revision >= 1),
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
) STRICT;

CREATE INDEX streams_disabled ON streams (disabled);
