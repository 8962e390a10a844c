//! The global-config values saved through the API (migration 0002, `config_overrides`): one
//! row per leaf path (`manager.input_packet_timeout_sec`) with its JSON value, so the table
//! shows exactly which fields an operator set and nothing else (SPEC §Config "only fields set
//! are stored"). The engine reads the layer whole at boot and replaces it whole on each write.

use chrono::Utc;
use rusqlite::{TransactionBehavior, params};
use serde_json::{Map, Value};

use super::{SqliteStore, format_time};
use crate::{ConfigRepository, StoreError};

impl ConfigRepository for SqliteStore {
    fn config_layer(&self) -> Result<Value, StoreError> {
        let db = |source| StoreError::Database {
            operation: "read config overrides",
            code: None,
            source,
        };
        let rows: Vec<(String, String)> = {
            let conn = self.lock();
            let mut statement = conn
                .prepare_cached("SELECT path, value FROM config_overrides ORDER BY path")
                .map_err(db)?;
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?
        };
        let mut layer = Value::Object(Map::new());
        for (path, json) in rows {
            let value = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
                code: format!("config override {path}"),
                reason: e.to_string(),
            })?;
            insert(&mut layer, &path, value);
        }
        Ok(layer)
    }

    fn put_config_layer(&self, layer: &Value) -> Result<(), StoreError> {
        let mut leaves = Vec::new();
        flatten(layer, "", &mut leaves);
        let db = |source| StoreError::Database {
            operation: "write config overrides",
            code: None,
            source,
        };
        let now = format_time(Utc::now());
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        tx.execute("DELETE FROM config_overrides", []).map_err(db)?;
        for (path, value) in leaves {
            tx.execute(
                "INSERT INTO config_overrides (path, value, updated_at) VALUES (?1, ?2, ?3)",
                params![path, value.to_string(), now],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }
}

/// Each leaf (anything but a non-empty object) of `value` with its dotted path.
fn flatten(value: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(v, &path, out);
            }
        }
        _ if prefix.is_empty() => {}
        leaf => out.push((prefix.to_owned(), leaf.clone())),
    }
}

/// Sets the value at a dotted path, making the objects on the way.
fn insert(root: &mut Value, path: &str, value: Value) {
    let mut at = root;
    for key in path.split('.') {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Value::Object(map) = at else { return };
        at = map.entry(key.to_owned()).or_insert(Value::Null);
    }
    *at = value;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_layer_round_trips_leaf_by_leaf_and_is_replaced_whole() {
        let store = SqliteStore::open_in_memory().expect("open");
        assert_eq!(store.config_layer().expect("read"), json!({}));
        let layer = json!({
            "manager": {"frozen_gops": 5, "pts_static_sec": 7},
            "hooks": null,
            "sessions": {"enabled": false},
            "security": {"allow_cidrs": ["10.0.0.0/8"], "play_signing": {"key": "k"}},
            "listeners": {"rtmp": {"listen_host": "127.0.0.1", "port": 1936}},
        });
        store.put_config_layer(&layer).expect("write");
        assert_eq!(store.config_layer().expect("read"), layer);
        let rows: i64 = store
            .lock()
            .query_row("SELECT COUNT(*) FROM config_overrides", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 8, "one row per leaf");
        store
            .put_config_layer(&json!({"buffer": {"capacity": 2048}}))
            .expect("replace");
        assert_eq!(
            store.config_layer().expect("read"),
            json!({"buffer": {"capacity": 2048}})
        );
    }
}
