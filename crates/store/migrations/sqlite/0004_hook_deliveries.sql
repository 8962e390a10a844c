-- 0004: each hook's delivery log (SPEC §API `GET /hooks/{hid}/deliveries`): its last attempts,
-- so the log survives a restart. `json` is serde_json of `domain::hook::Delivery`; `id` orders
-- the attempts (newest = highest). The store keeps the newest N per hook (the caller's N) and
-- removes a hook's rows with the hook.
CREATE TABLE hook_deliveries (
    id      INTEGER NOT NULL PRIMARY KEY,
    hook_id TEXT    NOT NULL,
    json    TEXT    NOT NULL
) STRICT;

CREATE INDEX hook_deliveries_by_hook ON hook_deliveries (hook_id, id);
