//! Hooks and their delivery history in SQLite: one row per hook, its JSON keyed by its id, and
//! the last deliveries of each in `hook_deliveries` (trimmed to a count on every insert).
//! Kept beside `sqlite.rs` (same connection, same conventions) so that file stays one concept:
//! streams and the schema.

use rusqlite::{TransactionBehavior, params};
use tributary_domain::hook::{Delivery, Hook};

use super::{JsonTable, SqliteStore};
use crate::{HookRepository, StoreError};

impl HookRepository for SqliteStore {
    fn list_hooks(&self) -> Result<Vec<Hook>, StoreError> {
        self.json_rows(
            "list hooks",
            "hook",
            "SELECT id, json FROM hooks ORDER BY id",
        )
    }

    fn hook(&self, id: &str) -> Result<Option<Hook>, StoreError> {
        self.json_row(
            "get hook",
            "hook",
            "SELECT json FROM hooks WHERE id = ?1",
            id,
        )
    }

    fn put_hook(&self, hook: &Hook, create_only: bool) -> Result<bool, StoreError> {
        let refuse = create_only.then_some(StoreError::HookExists {
            id: hook.id.clone(),
        });
        self.put_json(JsonTable::HOOKS, &hook.id, hook, refuse)
    }

    fn delete_hook(&self, id: &str) -> Result<bool, StoreError> {
        let db = |source| StoreError::Database {
            operation: "delete hook",
            code: Some(id.to_owned()),
            source,
        };
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let deleted = tx
            .execute("DELETE FROM hooks WHERE id = ?1", [id])
            .map_err(db)?;
        tx.execute("DELETE FROM hook_deliveries WHERE hook_id = ?1", [id])
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(deleted > 0)
    }

    fn add_delivery(&self, id: &str, delivery: &Delivery, keep: usize) -> Result<(), StoreError> {
        let json = serde_json::to_string(delivery).map_err(|e| StoreError::Encode {
            code: format!("hook {id} delivery"),
            reason: e.to_string(),
        })?;
        let db = |source| StoreError::Database {
            operation: "add hook delivery",
            code: Some(id.to_owned()),
            source,
        };
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        tx.execute(
            "INSERT INTO hook_deliveries (hook_id, json) VALUES (?1, ?2)",
            params![id, json],
        )
        .map_err(db)?;
        tx.execute(
            "DELETE FROM hook_deliveries WHERE hook_id = ?1 AND id NOT IN \
             (SELECT id FROM hook_deliveries WHERE hook_id = ?1 ORDER BY id DESC LIMIT ?2)",
            params![id, keep],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    fn deliveries(&self, id: &str, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let db = |source| StoreError::Database {
            operation: "list hook deliveries",
            code: Some(id.to_owned()),
            source,
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<String> = {
            let conn = self.lock();
            let mut statement = conn
                .prepare_cached(
                    "SELECT json FROM hook_deliveries WHERE hook_id = ?1 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(db)?;
            statement
                .query_map(params![id, limit], |row| row.get(0))
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?
        };
        Ok(rows
            .iter()
            .filter_map(|json| match serde_json::from_str(json) {
                Ok(delivery) => Some(delivery),
                Err(e) => {
                    tracing::error!(hook = %id, error = %e, "skipping corrupt delivery row");
                    None
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_are_created_once_replaced_listed_and_deleted() {
        let store = SqliteStore::open_in_memory().expect("open");
        let mut hook: Hook = serde_json::from_value(serde_json::json!({
            "id": "ops", "type": "http", "target": "http://example.org/hook", "secret": "s"
        }))
        .expect("hook");
        assert!(store.put_hook(&hook, true).expect("create"));
        assert!(matches!(
            store.put_hook(&hook, true),
            Err(StoreError::HookExists { id }) if id == "ops"
        ));
        hook.name = "Ops".into();
        assert!(!store.put_hook(&hook, false).expect("replace"));
        assert_eq!(store.hook("ops").expect("get"), Some(hook.clone()));
        assert_eq!(store.list_hooks().expect("list"), vec![hook]);
        // The delivery log keeps the newest `keep` entries, newest first, and goes with
        // the hook.
        for attempt in 1..=5 {
            let delivery = Delivery {
                at: "2026-12-06T08:00:00.000Z".into(),
                event_ids: vec![format!("e{attempt}")],
                status: tributary_domain::hook::DeliveryStatus::Failed,
                http_status: Some(503),
                error: "HTTP 503".into(),
                duration_ms: 3,
                attempt,
            };
            store.add_delivery("ops", &delivery, 3).expect("add");
        }
        let log = store.deliveries("ops", 100).expect("log");
        let attempts: Vec<u32> = log.iter().map(|d| d.attempt).collect();
        assert_eq!(attempts, [5, 4, 3]);
        assert_eq!(store.deliveries("ops", 1).expect("log").len(), 1);
        assert!(store.delete_hook("ops").expect("delete"));
        assert!(!store.delete_hook("ops").expect("delete again"));
        assert_eq!(store.hook("ops").expect("get"), None);
        assert!(store.deliveries("ops", 100).expect("log").is_empty());
    }
}
