-- 0002: global-config values saved through the API (SPEC §Config, §Storage).
--
-- `path` is the dotted config path (`manager.input_packet_timeout_sec`), `value` its JSON text.
-- Read at boot and laid over the file/env configuration.
CREATE TABLE config_overrides (
    path       TEXT NOT NULL PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
