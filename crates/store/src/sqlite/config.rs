//! The global-config values saved through the API (migration 0002, `config_overrides`): one
//! row per leaf path (`manager.input_packet_timeout_sec`) with its JSON value, so the table
//! shows exactly which fields an operator set and nothing else (SPEC §Config "only fields set
//! are stored"). The engine reads the layer whole at boot and replaces it whole on each write.

use rusqlite::params;
use serde_json::{Map, Value};
use tributary_domain::config::{leaves, set_leaf};

use super::SqliteStore;
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
            set_leaf(&mut layer, &path, value);
        }
        Ok(layer)
    }

    fn put_config_layer(&self, layer: &Value) -> Result<(), StoreError> {
        self.write("write config overrides", None, |tx, now, db| {
            tx.execute("DELETE FROM config_overrides", []).map_err(db)?;
            for (path, value) in leaves(layer) {
                tx.execute(
                    "INSERT INTO config_overrides (path, value, updated_at) VALUES (?1, ?2, ?3)",
                    params![path, value.to_string(), now],
                )
                .map_err(db)?;
            }
            Ok(())
        })
    }
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
